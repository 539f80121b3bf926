# `make run` and `make test` work on a fresh machine: they create .venv and install into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := sample_models/diabetes

.PHONY: run test lint typecheck install install-dev bench clean

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
	$(BIN)/ruff check scoring_runtime tests benchmarks sample_models
	$(BIN)/ruff format --check scoring_runtime tests benchmarks sample_models

typecheck: install-dev
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -n 2

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache benchmarks/.venv-ref
