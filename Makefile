# `make run` and `make test` work on a fresh machine: they create their virtual environments and install into them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := sample_models/diabetes
PYENV_ROOT ?= $(HOME)/.pyenv
# The Pythons the suite also runs on besides $(PYTHON) (3.11 in CI), found under pyenv or on the PATH.
OTHER_PYTHONS ?= 3.10 3.12 3.13
# The oldest Python claimed, which also runs the suite at the dependency floors.
FLOOR_PYTHON ?= 3.10
PYENV_ROOTS := $(PYENV_ROOT) $(shell pyenv root 2>/dev/null)
python_for = $(or $(lastword $(sort $(wildcard $(addsuffix /versions/$(1).*/bin/python$(1),$(PYENV_ROOTS))))),$(shell python$(1) -c 'import sys' 2>/dev/null && command -v python$(1)))
PYTEST_ARGS ?= -n 2

.PRECIOUS: .venv-%/.installed

.PHONY: image test-images run test browser vendor-swagger-ui test-main test-quick test-floor test-pythons lint typecheck install install-dev reference kserve-client test-tensorflow bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/scoring-runtime --entry_script $(SAMPLE)/score.py --model_dir $(SAMPLE)/model --host 127.0.0.1 --port 5001

lint: install-dev
	$(BIN)/ruff check scoring_runtime tests benchmarks sample_models base-images
	$(BIN)/ruff format --check scoring_runtime tests benchmarks sample_models base-images

typecheck: install-dev
	$(BIN)/mypy

# Everything CI runs: lint, types, the suite with coverage, then at the dependency floors and on the other Pythons,
# and the TensorFlow backend in a venv of its own.
test: lint typecheck test-main test-floor test-pythons test-tensorflow test-images

# The reference server (azmlinfsrv 1.5.1) in a venv of its own, as the benchmark uses it: tests compare our start-up
# lines and the script's environment with what it produces.
reference: $(VENV)/.installed-dev
	cd benchmarks && ../$(BIN)/python -c 'from bench_servers import ensure_reference_venv; ensure_reference_venv()'

# kserve's Python client, which tests/models/test_nocode_clients.py drives against our /v2 routes, in a venv of its
# own: kserve 0.21 pins pandas below the releases the suite runs on.
KSERVE_VERSION ?= 0.21.0
.venv-kserve/.installed: | $(BIN)/python
	rm -rf .venv-kserve && $(PYTHON) -m venv .venv-kserve
	.venv-kserve/bin/pip install --quiet 'kserve==$(KSERVE_VERSION)'
	touch $@

kserve-client: .venv-kserve/.installed

# The browser tests/app/test_api_page_browser.py drives the API page in: Debian's chromium (playwright is pointed at
# it rather than downloading its own build). Installed here when running as root, otherwise named.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then echo "chromium is missing: apt-get install chromium"; apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "chromium is missing: install it with 'sudo apt-get install chromium' (Debian/Ubuntu)"; exit 1; fi; }

# The suite on $(PYTHON) at the newest releases, with branch coverage of every process it starts (gated).
test-main: install-dev reference kserve-client browser
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

# The fast in-process suite: no server process, no waiting on timers.
test-quick: install-dev
	$(BIN)/pytest -m "not slow"

# Swagger UI for GET /docs, from the npm registry's swagger-ui-dist: the files the page loads and their licences,
# byte for byte as published, and VENDORED recording the version and each file's SHA-256 (tests check the files
# against it). `make vendor-swagger-ui SWAGGER_UI_VERSION=5.x.y` upgrades; npm checks the tarball's integrity.
SWAGGER_UI_VERSION ?= 5.35.0
SWAGGER_UI_DIR := scoring_runtime/app/static/swagger-ui
SWAGGER_UI_FILES := LICENSE NOTICE swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png
vendor-swagger-ui:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null && \
	    tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz) && \
	  rm -rf $(SWAGGER_UI_DIR) && mkdir -p $(SWAGGER_UI_DIR) && \
	  for name in $(SWAGGER_UI_FILES); do cp "$$tmp/package/$$name" $(SWAGGER_UI_DIR)/; done && \
	  { echo "swagger-ui-dist $(SWAGGER_UI_VERSION) (npm, Apache-2.0): make vendor-swagger-ui SWAGGER_UI_VERSION=$(SWAGGER_UI_VERSION)"; \
	    echo "tarball sha256 $$(sha256sum "$$tmp/swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz" | cut -d' ' -f1)"; \
	    cd $(SWAGGER_UI_DIR) && sha256sum $(SWAGGER_UI_FILES); } > $(SWAGGER_UI_DIR)/VENDORED

# A venv per other Python: .venv-3.12 and so on; .venv-floor holds the floors of every runtime dependency.
.venv-floor/.installed: pyproject.toml tests/floors.py | $(VENV)/.installed-dev
	@test -n "$(call python_for,$(FLOOR_PYTHON))" || { echo "Python $(FLOOR_PYTHON) not found (pyenv install $(FLOOR_PYTHON))"; exit 1; }
	rm -rf .venv-floor && $(call python_for,$(FLOOR_PYTHON)) -m venv .venv-floor
	.venv-floor/bin/python -m pip install --quiet --upgrade pip
	$(BIN)/python tests/floors.py > .venv-floor/floors.txt
	.venv-floor/bin/pip install --quiet -c .venv-floor/floors.txt -e '.[test]'
	touch $@

.venv-%/.installed: pyproject.toml
	@test -n "$(call python_for,$*)" || { echo "Python $* not found (pyenv install $*)"; exit 1; }
	rm -rf .venv-$* && $(call python_for,$*) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/pip install --quiet -e '.[test]'
	touch $@

# TensorFlow SavedModels: tensorflow is a large optional extra (about 600 MB), tested on its own; the main suite skips
# tests/models/test_tensorflow_model.py, and its coverage is measured here.
.venv-tf/.installed: pyproject.toml
	rm -rf .venv-tf && $(PYTHON) -m venv .venv-tf
	.venv-tf/bin/python -m pip install --quiet --upgrade pip
	.venv-tf/bin/pip install --quiet -e '.[test,tensorflow]'
	touch $@

test-tensorflow: .venv-tf/.installed
	.venv-tf/bin/python -m coverage run --rcfile=/dev/null --branch --data-file=.coverage-tf \
	  --include='scoring_runtime/models/tensorflow_model.py' -m pytest -p no:cacheprovider tests/models/test_tensorflow_model.py tests/models/test_tensorflow_server.py
	.venv-tf/bin/python -m coverage report --rcfile=/dev/null --data-file=.coverage-tf --show-missing --fail-under=90

# The images of base-images/ built for real (buildah on a Debian rootfs from mmdebstrap: no Docker daemon, no
# registry) and run (tests/containers). As root, buildah and mmdebstrap are installed from Debian's packages.
test-images: install-dev
	$(BIN)/pytest -p no:cacheprovider -m container tests/containers

# The runtime image, as scoring-runtime:<version> (IMAGE_EXTRAS=sklearn,onnx: scoring-runtime-nocode:<version>), the
# base image `scoring-runtime package` and deploy/ name.
IMAGE_EXTRAS ?=
image: install-dev
	$(BIN)/python base-images/build_local.py runtime --extras '$(IMAGE_EXTRAS)'

test-floor: .venv-floor/.installed
	.venv-floor/bin/python -m pytest $(PYTEST_ARGS) -p no:cacheprovider

test-pythons: $(foreach version,$(OTHER_PYTHONS),test-python-$(version))

test-python-%: .venv-%/.installed
	.venv-$*/bin/python -m pytest $(PYTEST_ARGS) -p no:cacheprovider

# The side-by-side benchmark (benchmarks/bench.py, about 30 minutes), then benchmarks/RESULTS.md and its chart.
# wrk comes from Debian's package: installed here when running as root, otherwise named. Smoke run:
# make bench BENCH_ARGS=--quick BENCH_REPORT_DIR=benchmarks/results
BENCH_ARGS ?=
BENCH_REPORT_DIR ?= benchmarks
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then echo "wrk is missing: apt-get install wrk"; apt-get update -qq && apt-get install -y -qq wrk; \
	  else echo "wrk is missing: install it with 'sudo apt-get install wrk' (Debian/Ubuntu)"; exit 1; fi; }
	out=benchmarks/results/$$(date -u +%Y%m%dT%H%M%SZ).jsonl && \
	  $(BIN)/python benchmarks/bench.py --out $$out $(BENCH_ARGS) && \
	  $(BIN)/python benchmarks/report.py $$out --out-dir $(BENCH_REPORT_DIR)

clean:
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* .coverage-tf benchmarks/.venv-ref \
	  benchmarks/.venv-mlserver
