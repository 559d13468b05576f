"""The small contract every benchmark module follows, and the helpers they share.

A benchmark is a module under bench/ with a function

    def run(work_dir: Path) -> list[BenchResult]: ...

that does its measurements in `work_dir` (a fresh scratch directory it may fill) and returns its
figures. `bench/run.py` lists the modules (REGISTRY), runs each that exists, and writes
BENCHMARKS.md from the results: machine, date, medians, min-max, goals and verdicts.

A BenchResult is one measured quantity: its samples, and optionally a goal. For comparisons
(drbackup against raw restic) the baseline samples are kept too and the goal is on the ratio
of the medians.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Comparison = Literal["<=", ">="]
SCALE_ENV = "DRBACKUP_BENCH_SCALE"


@dataclass
class BenchResult:
    """One figure. `samples` in `unit`; with `baseline`, the figure that matters is
    median(samples) / median(baseline) and `goal` applies to that ratio."""

    group: str                      # section of BENCHMARKS.md, e.g. "Backup and restore"
    name: str                       # e.g. "first backup, 1 GiB / 20,000 files"
    unit: str                       # "s", "ms", "MB", "%", ...
    samples: list[float]
    baseline: list[float] | None = None
    baseline_name: str = "raw restic"
    goal: float | None = None       # the limit, on the ratio when there is a baseline
    goal_op: Comparison = "<="
    goal_text: str = ""             # how the goal reads in the report, e.g. "ratio ≤ 1.03"
    note: str = ""                  # conditions, or the measured cause of a missed goal

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        base = statistics.median(self.baseline)
        return self.median / base if base else None

    @property
    def judged(self) -> float:
        """The value the goal is about: the ratio when there is a baseline, else the median."""
        ratio = self.ratio
        return ratio if ratio is not None else self.median

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        if self.goal_op == "<=":
            return self.judged <= self.goal
        return self.judged >= self.goal


BenchFunction = Callable[[Path], list[BenchResult]]


def scale() -> float:
    """DRBACKUP_BENCH_SCALE shrinks data sizes (e.g. 0.01 for a smoke run); default 1."""
    try:
        value = float(os.environ.get(SCALE_ENV, "1"))
    except ValueError:
        return 1.0
    return min(max(value, 0.0001), 1.0)


def repeats(default: int) -> int:
    """Fewer repetitions in a scaled-down smoke run."""
    return default if scale() >= 1.0 else max(1, min(default, 2))


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """with stopwatch() as elapsed: ...; elapsed() -> seconds (monotonic)."""
    started = time.perf_counter()
    finished: list[float] = []
    try:
        yield lambda: (finished[0] if finished else time.perf_counter()) - started
    finally:
        finished.append(time.perf_counter())


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def password_file(work: Path) -> Path:
    """A repository password file (mode 0600) for a benchmark's own repositories."""
    secrets = work / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    path = secrets / "bench.password"
    path.write_text("bench-password-not-secret\n")
    path.chmod(0o600)
    return path


def drop_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "%":
        return f"{value:.2f} %"
    return f"{value:.3g} {unit}".strip()


# -- the machine ------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_facts(restic: str = "restic") -> dict[str, str]:
    cpu = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    try:
        restic_version = subprocess.run([restic, "version"], capture_output=True, text=True,
                                        timeout=30, check=False).stdout.strip()
    except OSError:
        restic_version = "not found"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(os.cpu_count() or "?"),
        "cpu model": cpu.group(1).strip() if cpu else platform.processor() or "?",
        "memory": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "restic": restic_version,
        "load average (1/5/15 min) at start": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


@dataclass
class ModuleOutcome:
    module: str
    results: list[BenchResult] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    present: bool = True
