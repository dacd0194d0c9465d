# Thin targets: each one is what the README and CI actually run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= configs/default.yaml

.PHONY: install install-test fit test test-fast lint bench clean

# The venv is rebuilt when pyproject.toml changes; the stamp files record which extras are in.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

fit: install
	$(BIN)/svmtrain fit --config $(CONFIG)

test: install-test
	$(BIN)/pytest -n 2

test-fast: install-test
	$(BIN)/pytest -n 2 -m "not slow"

lint: install-test
	$(BIN)/ruff check
	$(BIN)/ruff format --check

bench: install-test
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_features.py
	$(BIN)/python scripts/bench_lbfgs.py
	$(BIN)/python scripts/bench_sklearn.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
