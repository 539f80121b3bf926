# `make run` and `make test` work on a fresh machine: they create .venv and install into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := sample_models/diabetes

.PHONY: run test lint typecheck install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
