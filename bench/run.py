"""`make bench`: run every benchmark module in turn (each prints its own figures)."""

from __future__ import annotations

import importlib

# Explicit list: a benchmark runs because it is named here.
BENCHMARKS = ["bench.db_dump", "bench.daemon_idle", "bench.scrape"]


def main() -> None:
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        module = importlib.import_module(name)
        module.main()


if __name__ == "__main__":
    main()
