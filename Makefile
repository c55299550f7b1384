# schedcp-bench. The two set-up commands of the README are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-unit bench image clean

setup:
	@bash scripts/setup-host.sh

# The main job. Until the harness lands it builds the default image and shows a fresh
# sandbox: kernel pin, sched_ext state, the prebuilt schedulers.
run: setup
	$(BIN)/schedcp image build
	$(BIN)/schedcp sandbox exec -- 'echo "kernel: $$(uname -r)"; echo "sched_ext: $$(cat /sys/kernel/sched_ext/state)"; echo "schedulers: $$(ls /opt/schedcp/scx/bin | tr "\n" " ")"'

test: setup
	$(BIN)/python -m pytest -v --timeout=1800 tests

test-unit: setup
	$(BIN)/python -m pytest -v -m "not vm" tests

bench: setup
	$(BIN)/python benchmarks/reset.py
	$(BIN)/python benchmarks/relay.py
	$(BIN)/python benchmarks/noise.py

image: setup
	$(BIN)/schedcp image build

clean:
	$(BIN)/schedcp sandbox cleanup || true
