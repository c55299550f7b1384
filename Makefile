# schedcp-bench. The two set-up commands of the README are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-unit test-faults soak bench image clean local-model cli-agents

setup:
	@bash scripts/setup-host.sh

# The main job: three smoke workloads from different categories, headless, with the
# `claude` agent when ANTHROPIC_API_KEY is set and the `scx-search` tuner otherwise;
# prints progress, then the report. Results: jobs/<job-id>/.
run: setup
	$(BIN)/schedcp run --workloads hackbench,sqlite,gzip --size smoke --repeat 5

# The main job and the tests (CI too) use the image recipe's `lite` profile: everything
# but the llama-cpp feature, whose compile is about 25 minutes on a 2-core host (the
# llama-cpp workload skips there with the reason). `SCHEDCP_IMAGE_PROFILE= make test`
# uses the whole recipe, as `make bench` and a plain `schedcp` command do.
run test test-faults test-unit soak: export SCHEDCP_IMAGE_PROFILE ?= lite

test: setup
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

image: setup
	$(BIN)/schedcp image build

# optional: a real local model (llama-cpp-python builds llama.cpp from source: minutes)
local-model: setup
	@command -v g++ >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++; }
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip install -e '.[local]'

# optional: coding-agent CLIs as agents (--agent cli:claude-code), into .cli-agents/
cli-agents:
	npm install --no-audit --no-fund --prefix .cli-agents @anthropic-ai/claude-code

clean:
	$(BIN)/schedcp sandbox cleanup || true
