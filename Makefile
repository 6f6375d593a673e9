# Loupe: `make run` starts the whole system locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := -e libs/common -e libs/cli -e deploy/local \
	-e services/gateway -e services/dataset -e services/training \
	-e services/hosting -e services/inference -e services/human_loop
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-integration test-clients test-deploy bench venv clean

venv: $(STAMP)

$(STAMP): constraints.txt libs/*/pyproject.toml services/*/pyproject.toml deploy/local/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt $(PACKAGES) \
		pytest pytest-asyncio pytest-timeout boto3 awscli kubernetes-validate jsonschema PyYAML check-jsonschema
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m loupe_local run

test: $(STAMP)
	$(PY) -m pytest tests

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration tests/clients

test-deploy: $(STAMP)
	$(PY) -m pytest tests/deploy

bench: $(STAMP)
	$(PY) tests/benchmarks/bench_control_plane.py

clean:
	rm -rf $(VENV) .loupe-data
