# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint typecheck unit bench bench-internet clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	$(BIN)/python -m compileall -q src  # an editable install compiles nothing: start-up pays
	rm -f $(VENV)/.installed-*
	touch $@

## Install afetch and fetch a list from a local demo server it starts and stops; records go to stdout.
run: $(STAMP)
	$(BIN)/python examples/demo.py

## Install the dev tools and run lint, type checks and the whole test suite.
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests

unit: $(STAMP)
	$(BIN)/pytest

## The benchmark, in its own venv with uvloop (afetch-cli[speed]) and matplotlib.
bench:
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -e '.[speed,bench]'
	.venv-bench/bin/python -m compileall -q src
	.venv-bench/bin/python bench/run.py

## The simulated internet (bench/internet.py): root, unshare, nginx and its echo module.
bench-internet:
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -e '.[speed,bench]'
	.venv-bench/bin/python -m compileall -q src
	.venv-bench/bin/python bench/internet.py

clean:
	rm -rf $(VENV) .venv-bench .mypy_cache .ruff_cache .pytest_cache .coverage
