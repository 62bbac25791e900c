# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck record-histories clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## Temporal dev server + worker + API in the foreground (Ctrl-C stops all three)
	$(BIN)/python -m core.launcher

test: $(STAMP)  ## the whole suite, against a real Temporal dev server, worker and API
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

record-histories: $(STAMP)  ## re-record the workflow histories the replay test uses
	$(BIN)/python -m tests.histories.record

clean:
	rm -rf $(VENV) test-output .pytest_cache .mypy_cache .ruff_cache
