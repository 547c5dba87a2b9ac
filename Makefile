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
EXTRAS ?= cpu,train,dev,loadtest,kernels,scale
PYTEST_ARGS ?= -m "not slow and not gpu"
STAMP := $(VENV)/.installed

# make loadtest: Locust against the demo bundle (or TARGET_URL), reports in LOADTEST_REPORT.
TARGET_URL ?=
LOADTEST_DURATION ?= 30s
LOADTEST_USERS ?= 8
LOADTEST_SPAWN_RATE ?= 10
LOADTEST_SHAPE ?= soak
LOADTEST_CANDIDATES ?= uniform:50:500
LOADTEST_REPORT ?= var/loadtest
LOADTEST_GATE_P99_MS ?= 250
LOADTEST_GATE_FAILURE_RATIO ?= 0.01
LOADTEST_GATE_SHED_RATIO ?= 0.05
LOADTEST_EXPERIMENT ?=

.PHONY: setup run demo serve test test-all lint results clean loadtest bench bench-experiment chaos gpu-check

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

# Every package the wheel ships (pyproject.toml: tool.setuptools.packages.find).
PACKAGES := service kernels offline model_export cli loadtest bench chaos

# The static checks first (lint, format, types), then the suite.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PACKAGES)

# Regenerates docs/BENCHMARKS.md, docs/benchmarks.json and docs/benchmarks.png: the service (on
# the demo ranker and on one with the self-attention user encoder, trained here once), the naive
# PyTorch baseline and a Ray Serve peer (when the peer extra is installed) under open-loop load,
# workloads W1 and W2, each system's ladder three times, interleaved (BENCH_ARGS=--rounds 1 for
# a quick look).
BENCH_ARGS ?=
bench: setup
	@test -f var/demo/model/ranker.pt || $(BIN)/reaseq demo
	@test -f var/demo/model_sa/ranker.pt || $(BIN)/reaseq train --fusion gate --user-layers 1 \
		--out var/demo/model_sa
	@$(BIN)/python -c "import ray.serve" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[peer]"
	$(BIN)/python -m bench $(BENCH_ARGS)

# Regenerates docs/EXPERIMENT_OVERHEAD.md and docs/experiment_overhead.json: the service with one
# bundle against the same service running a two-bundle experiment, W1, interleaved rounds.
BENCH_EXPERIMENT_ARGS ?=
bench-experiment: setup
	@test -f var/demo/model/ranker.pt || $(BIN)/reaseq demo
	$(BIN)/python -m bench.experiment_overhead $(BENCH_EXPERIMENT_ARGS)

# On a machine with a CUDA GPU, in under 8 minutes: the device path's parity tests on the GPU, the
# kernels' benchmark (docs/KERNELS.md, docs/kernels.json) and the device path's serving benchmark
# at W1 and W2 (docs/DEVICE_SERVING.md, docs/device_serving.json). It installs nothing, so it runs
# without a package registry: the venv must already hold the kernels and dev extras with a CUDA
# build of PyTorch (onnxruntime-gpu optional). GPU_CHECK_ARGS=--dry-run: its CPU-safe parts at
# tiny sizes, on any machine.
GPU_CHECK_ARGS ?=
gpu-check:
	@test -x $(BIN)/python || { echo "gpu-check: no $(VENV); create it first (make setup)"; exit 2; }
	$(BIN)/python -m bench.gpu_check $(GPU_CHECK_ARGS)

# Regenerates docs/RESULTS.md and docs/results.json (offline evaluation, several seeds).
results: setup
	$(BIN)/reaseq results

# Starts the service on the demo bundle (built when missing) unless TARGET_URL is set; exits
# non-zero when the p99 or failure-ratio gate fails. LOADTEST_EXPERIMENT=demo-b serves a second
# bundle of that version (exported from the demo run when missing) beside the current one, as a
# 50/50 experiment; every arm must answer.
loadtest: setup
	@test -n "$(TARGET_URL)" || test -f bundles/CURRENT || $(BIN)/reaseq demo
	@test -z "$(LOADTEST_EXPERIMENT)" || test -d bundles/$(LOADTEST_EXPERIMENT) || \
		$(BIN)/reaseq export --version $(LOADTEST_EXPERIMENT) --no-activate
	TARGET_URL="$(TARGET_URL)" $(BIN)/python -m loadtest --duration $(LOADTEST_DURATION) \
		--users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) --shape $(LOADTEST_SHAPE) \
		--candidates $(LOADTEST_CANDIDATES) --report-dir $(LOADTEST_REPORT) \
		--gate-p99-ms $(LOADTEST_GATE_P99_MS) --gate-failure-ratio $(LOADTEST_GATE_FAILURE_RATIO) \
		--gate-shed-ratio $(LOADTEST_GATE_SHED_RATIO) $(if $(LOADTEST_EXPERIMENT),--experiment $(LOADTEST_EXPERIMENT))

# Regenerates docs/RELIABILITY.md and docs/reliability.json: Redis, a worker and bundles fail
# under steady load (a few minutes; builds the demo when missing). CHAOS_ARGS=--quick for a try.
CHAOS_ARGS ?=
chaos: setup
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) bundles var .pytest_cache .ruff_cache .mypy_cache
