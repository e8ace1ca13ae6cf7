# The two commands the README opens with: `make demo` and `make test`.
PY := .venv/bin/python
# Some machines set PYTHONDONTWRITEBYTECODE: then every Python process the suite starts (albprobe,
# Locust, gunicorn, each xdist worker's collection with pytest's assertion rewriting) compiles the
# project's sources again. Caching the bytecode saves about a minute of CPU per `make test`.
unexport PYTHONDONTWRITEBYTECODE
PYTEST_ARGS ?=

.PHONY: demo tune-demo test test-fast lint bench sweep setup setup-test testbed clean

setup:
	@scripts/bootstrap.sh runtime

setup-test:
	@scripts/bootstrap.sh test

demo: setup
	@.venv/bin/albprobe demo

# Capacity tuning end to end on the testbed (about 75 s): 2 sync workers behind a 100 ms
# endpoint, sized for 30 req/s, proven at the recommended setting. Report: runs/tune-demo-<time>/.
TUNE_DEMO_OUT ?= runs/tune-demo-$(shell date +%Y%m%d-%H%M%S)
tune-demo: setup
	@.venv/bin/albprobe tune --endpoint '/api/slow?ms=100' --worker-class sync --gunicorn-workers 2 \
		--slo 'p99<500ms' --slo '5xx_rate<0.01' --target-rps 30 \
		--start-rate 10 --growth 1.5 --resolution 0.15 --step 4s --steps 6 --out $(TUNE_DEMO_OUT)

testbed: setup
	@.venv/bin/albprobe testbed up

# The suite mostly waits (health checks, fault offsets, run durations, browser starts), so it runs
# on more parallel workers than cores; each worker has its own port band (tests/conftest.py).
# 7 workers, 5 of them taking the load tests in turn (ALBPROBE_TEST_HEAVY): on a quiet 2-core
# machine 5 min 24 s (6 workers / 4 heavy groups: 5 min 52 s); beside a 2-core CPU hog 7 min 35 s.
TEST_WORKERS ?= 7
test: setup-test
	@.venv/bin/ruff check .
	@.venv/bin/lint-imports --no-cache
	@$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

# The inner loop: the tests that need no testbed, browser or moto server (tests/conftest.py marks
# the others), in about a minute. worksteal: an idle worker takes tests queued on the busy one
# (the default hands out fixed chunks; one worker then often ends 15-20 s after the other).
test-fast: setup-test
	@$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow and not browser and not testbed and not moto" --durations=10 $(PYTEST_ARGS)

lint: setup-test
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup-test
	@$(PY) bench/run_all.py

# Verdict sweep: SWEEP_N seeded random testbed scenarios run for real (~35 s each), verdict vs the
# injected cause. A benchmark, not a test (too long for CI). SWEEP_N=60 SWEEP_SEED=1000 by default: 4 of each of the 15 kinds.
SWEEP_N ?= 60
SWEEP_SEED ?= 1000
sweep: setup
	@SWEEP_N=$(SWEEP_N) SWEEP_SEED=$(SWEEP_SEED) nice -n 10 $(PY) bench/sweep.py

clean:
	rm -rf .venv runs .pytest_cache .ruff_cache
