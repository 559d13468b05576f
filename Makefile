# drbackup: the two commands a new machine needs are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Two workers: most tests wait on servers, debounce windows and restic; the suite stays
# well under 15 minutes on 2 cores. Long trials (@pytest.mark.slow) run in `make test-long`.
PYTEST_WORKERS ?= 2

.PHONY: setup demo test lint typecheck unit test-long bench example clean

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

lint: setup
	$(VENV)/bin/ruff check drbackup tests scripts bench

typecheck: setup
	$(VENV)/bin/mypy

test: setup
	$(VENV)/bin/ruff check drbackup tests scripts bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

test-long: setup
	DRBACKUP_LONG=1 $(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.run

example: setup
	$(VENV)/bin/drbackup config example > config/drbackup.example.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .demo
