# rewardlab: `make quickstart` sets up and runs the demo pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test lint bench clean

setup: $(STAMP)

# torch first, pinned: the local CPU wheel (an unpinned torch would pull gigabytes of CUDA)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

quickstart: setup
	$(BIN)/rewardlab quickstart

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/embedding_cache.py

clean:
	rm -rf $(VENV) runs .pytest_cache
