# `make audit` and `make test` each create .venv on first use and install salun into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: audit test test-slow bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.salun: $(BIN)/python pyproject.toml
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.salun-test: $(VENV)/.salun
	$(BIN)/pip install -e '.[test]'
	touch $@

audit: $(VENV)/.salun
	$(BIN)/salun audit

test: $(VENV)/.salun-test
	$(BIN)/python -m pytest

test-slow: $(VENV)/.salun-test
	$(BIN)/python -m pytest -m slow

bench: $(VENV)/.salun
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf salun-report .salun-store
