# Two commands on a fresh machine: `make run` and `make test`. Both create .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# PyTorch is installed first, pinned, so that the project's torch range is met by a CPU build
# instead of pulling the CUDA packages. Override for another build, e.g. TORCH_SPEC=torch==2.5.1.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= cpu,train,dev
PYTEST_ARGS ?= -m "not slow and not gpu"
STAMP := $(VENV)/.installed

.PHONY: setup run demo serve test test-all lint results clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Builds the demo bundle when missing, then serves it on the embedded store.
run: setup
	@test -f bundles/CURRENT || $(BIN)/reaseq demo
	@$(BIN)/reaseq example-request --host $(HOST) --port $(PORT)
	$(BIN)/reaseq serve --host $(HOST) --port $(PORT)

demo: setup
	$(BIN)/reaseq demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service kernels offline model_export cli

# Regenerates docs/RESULTS.md and docs/results.json (offline evaluation, several seeds).
results: setup
	$(BIN)/reaseq results

clean:
	rm -rf $(VENV) bundles var .pytest_cache .ruff_cache .mypy_cache
