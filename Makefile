# Two commands on a fresh machine (python3, make and git only): `make demo` and `make test`.
# Each creates or reuses .venv and installs what it needs; the stamps are refreshed when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck pytest docs test-py bench soak fuzz format clean

help:
	@echo "make demo   - run the end-to-end demo against the embedded ACS Identity emulator"
	@echo "make test   - ruff, ruff format --check, mypy --strict, the docs build and pytest with coverage"
	@echo "make docs   - build the documentation site (mkdocs build --strict) into site/"
	@echo "make test-py PY=/path/to/python3 - the whole pytest suite on another Python, in its own venv"
	@echo "make bench  - benchmarks against the peer packages; writes BENCHMARKS.md"
	@echo "make soak   - long soak and load runs (about 3 minutes)"
	@echo "make fuzz   - longer fuzzing of the parsers"
	@echo "make format - apply ruff format and the autofixable lint rules"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=25.1"

# Both distributions of the repository, editable: the library and the emulator (emulator/).
$(VENV)/.demo-stamp: pyproject.toml emulator/pyproject.toml | $(PY)
	$(PIP) install -e ".[aio,requests]" -e ./emulator --group demo
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
	$(BIN)/mypy --strict src/azure/communication/common emulator/src/acs_emulator emulator/src/pytest_acs_emulator.py

pytest: $(VENV)/.dev-stamp
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term --cov-fail-under=90

test: lint typecheck docs pytest

# The site builds offline (no CDN fonts); --strict turns a broken link or cross-reference into a failure.
docs: $(VENV)/.dev-stamp
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# The whole pytest suite on another interpreter, in its own venv named after its minor version (.venv-3.10,
# .venv-3.13): CI runs it on every supported Python the machine has. Coverage and the lint gates run once, in
# `make test`; here only the tests, with the same extras and the test and release groups.
# PYTEST_ARGS narrows the run (e.g. PYTEST_ARGS=tests/identifiers); CI leaves it empty: the whole suite.
TEST_PYTHON ?=
PYTEST_ARGS ?=
test-py:
	@test -n "$(TEST_PYTHON)" || { echo "usage: make test-py TEST_PYTHON=/path/to/python3" >&2; exit 2; }
	@set -e; \
	version=$$($(TEST_PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	venv=.venv-$$version; \
	if [ ! -x $$venv/bin/python ]; then \
		$(TEST_PYTHON) -m venv $$venv; \
		$$venv/bin/python -m pip --disable-pip-version-check -q install --upgrade "pip>=25.1"; \
	fi; \
	echo "== pytest on $$($$venv/bin/python -V) ($$venv)"; \
	$$venv/bin/python -m pip --disable-pip-version-check -q install -e ".[aio,httpx,requests]" -e ./emulator \
		--group test --group release; \
	$$venv/bin/python -m pytest -q -p no:cacheprovider -o addopts="" -ra --strict-markers -m "not soak" $(PYTEST_ARGS)

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
