# The two commands the README opens with: `make demo` and `make test`.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lint bench sweep setup setup-test testbed clean

setup:
	@scripts/bootstrap.sh runtime

setup-test:
	@scripts/bootstrap.sh test

demo: setup
	@.venv/bin/albprobe demo

testbed: setup
	@.venv/bin/albprobe testbed up

test: setup-test
	@.venv/bin/ruff check .
	@.venv/bin/lint-imports --no-cache
	@$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup-test
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup-test
	@$(PY) bench/run_all.py

# Verdict sweep: SWEEP_N seeded random testbed scenarios run for real (~35 s each), verdict vs the
# injected cause. A benchmark, not a test (too long for CI). SWEEP_N=30 SWEEP_SEED=1000 by default.
SWEEP_N ?= 30
SWEEP_SEED ?= 1000
sweep: setup
	@SWEEP_N=$(SWEEP_N) SWEEP_SEED=$(SWEEP_SEED) nice -n 10 $(PY) bench/sweep.py

clean:
	rm -rf .venv runs .pytest_cache .ruff_cache
