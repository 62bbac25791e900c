# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run receiver test test-cpu check bench chaos lint screenshots record-histories clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## Temporal dev server + worker + API in the foreground (Ctrl-C stops all three)
	$(BIN)/python -m launcher

receiver: $(STAMP)  ## an example receiver on http://127.0.0.1:9000 that prints what it gets
	$(BIN)/python -m uvicorn examples.receiver:app --host 127.0.0.1 --port $${RECEIVER_PORT:-9000} --log-level warning

# Six processes on two cores: the suite mostly waits, so more processes than cores finish a little sooner
# on a busy machine (beside a CPU hog, one commit: 9:31 with six, 10:19 with four; eight no better than
# six), and as soon on a quiet one, for 10% more CPU (docs/development.md).
# Bytecode written, whatever the environment says (PYTHONDONTWRITEBYTECODE is set in some images, the one
# this project is developed and checked in included): the suite, the bench and the chaos run start dozens
# to hundreds of Python processes (stacks, lanes, command lines) that import this project's modules, and
# pytest rewrites every test module's asserts in each of its processes; without a cache each compiles all
# of it again. Written once, into __pycache__ (ignored by git): pytest's collection costs each process 7
# CPU-seconds instead of 10, and a worker and an API start with 0.3 less between them.
WRITE_BYTECODE = PYTHONDONTWRITEBYTECODE=
SUITE = $(WRITE_BYTECODE) $(BIN)/python -m pytest -n $${TEST_PROCESSES:-6} --dist loadfile --no-loadscope-reorder

test: $(STAMP)  ## the whole suite, against a real Temporal dev server, worker and API
	$(SUITE)

test-cpu: $(STAMP)  ## the whole suite, then the CPU each test file cost, with every process it started
	$(SUITE) -p tests.cpu_usage

check: lint  ## the fast lane (about a minute): lint, type checks and the tests that start no process of the service
	$(WRITE_BYTECODE) $(BIN)/python -m pytest -n $${TEST_PROCESSES:-2} -q -m "not stack and not browser and not slow"

bench: $(STAMP)  ## the benchmarks of BENCHMARKS.md (about 55 minutes; results in bench-results/)
	$(WRITE_BYTECODE) $(BIN)/python -m bench.run

chaos: $(STAMP)  ## faults injected into the real stack, each one counted (about 17 minutes; RELIABILITY.md, results in chaos-results/)
	$(WRITE_BYTECODE) $(BIN)/python -m chaos.run

# TypeScript for the dashboard's type check, from npm, exactly as package-lock.json pins it.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

lint: $(STAMP) $(NODE_STAMP)  ## ruff, mypy (strict), the import rule between layers and the dashboard's type check (tsc)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py
	node_modules/.bin/tsc -p tsconfig.json

screenshots: $(STAMP)  ## re-take the docs' screenshots: the browser tests, then copied to docs/screenshots/
	$(BIN)/python -m pytest tests/test_dashboard_browser.py tests/test_dashboard_ordered_browser.py \
		tests/test_portal_browser.py -q
	$(BIN)/python -m tests.readme_screenshots

record-histories: $(STAMP)  ## re-record the workflow histories the replay test uses
	$(BIN)/python -m tests.histories.record

clean:  ## remove the virtualenv, node_modules, test output and caches
	rm -rf $(VENV) node_modules test-output .pytest_cache .mypy_cache .ruff_cache
