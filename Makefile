# drbackup: the two commands a new machine needs are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Four workers on 2 cores: most tests wait on servers, debounce windows and restic (with three
# the suite used ~1.6 cores and took 15.5 min of wall time on an idle machine). worksteal: an
# idle worker takes queued tests from a busy one, so the minute-long trials do not end the run
# on one worker while the others wait. Long trials (@pytest.mark.slow) run in `make test-long`.
PYTEST_WORKERS ?= 4
PYTEST_DIST ?= worksteal

.PHONY: setup demo test lint typecheck unit test-long test-systemd bench example clean

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
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) -m "not slow" $(PYTEST_ARGS)

test-long: setup
	DRBACKUP_LONG=1 $(PY) -m pytest -q -m "slow and not systemd" $(PYTEST_ARGS)
	$(MAKE) test-systemd

# drbackup.service under a real systemd: a cached Debian 12 rootfs (scripts/systemd-rootfs.sh,
# /var/cache/drbackup-test) booted with systemd-nspawn (tests/systemd/; ~8 min, needs root;
# skipped with one line where nspawn cannot boot). Not part of `make test`.
test-systemd: setup
	$(PY) -m pytest -q -p no:cacheprovider -m systemd tests/systemd $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.run

example: setup
	$(VENV)/bin/drbackup config example > config/drbackup.example.toml

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .demo
