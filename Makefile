# Two commands on a fresh machine (python3, make and git only): `make demo` and `make test`.
# Each creates or reuses .venv and installs what it needs; the stamps are refreshed when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck pytest bench soak fuzz format clean

help:
	@echo "make demo   - run the end-to-end demo against the embedded ACS Identity emulator"
	@echo "make test   - ruff, ruff format --check, mypy --strict and pytest with coverage"
	@echo "make bench  - benchmarks against the peer packages; writes BENCHMARKS.md"
	@echo "make soak   - long soak and load runs (about 3 minutes)"
	@echo "make fuzz   - longer fuzzing of the parsers"
	@echo "make format - apply ruff format and the autofixable lint rules"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=25.1"

# Both distributions of the repository, editable: the library and the emulator (emulator/).
$(VENV)/.demo-stamp: pyproject.toml emulator/pyproject.toml | $(PY)
	$(PIP) install -e ".[aio,requests]" -e ./emulator
	@touch $@

# Development tools are PEP 735 dependency groups (pip >= 25.1), not published extras.
$(VENV)/.dev-stamp: pyproject.toml emulator/pyproject.toml | $(PY)
	$(PIP) install -e ".[aio,httpx,requests]" -e ./emulator --group dev
	@touch $(VENV)/.demo-stamp $@

demo: $(VENV)/.demo-stamp
	$(BIN)/acs-common demo

lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-stamp
	$(BIN)/mypy --strict src/azure/communication/common emulator/src/acs_emulator

pytest: $(VENV)/.dev-stamp
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term --cov-fail-under=90

test: lint typecheck pytest

bench: $(VENV)/.dev-stamp
	$(PY) bench/run.py

soak: $(VENV)/.dev-stamp
	ACS_SOAK_SECONDS=120 $(BIN)/pytest -q -p no:cacheprovider -m soak tests/reliability --timeout=900 -o addopts=""

$(VENV)/.fuzz-stamp: pyproject.toml $(VENV)/.dev-stamp
	$(PIP) install --group fuzz
	@touch $@

fuzz: $(VENV)/.fuzz-stamp
	ACS_FUZZ_EXAMPLES=20000 $(BIN)/pytest -q -p no:cacheprovider tests/reliability/test_fuzz.py --timeout=1800 -o addopts=""

format: $(VENV)/.dev-stamp
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .coverage .pytest_cache .mypy_cache .ruff_cache
