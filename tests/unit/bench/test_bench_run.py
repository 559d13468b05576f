"""The benchmark runner's contract: modules found through the registry, absent ones reported,
a failing one kept apart, figures saved per module and rendered into the report."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import pytest

from bench import run as bench_run
from bench.common import BenchResult


def test_ratio_goal_and_verdict() -> None:
    result = BenchResult(group="g", name="n", unit="s", samples=[10.0, 10.4, 10.2],
                         baseline=[10.0, 9.9, 10.1], goal=1.03)
    assert result.median == pytest.approx(10.2)
    assert result.ratio == pytest.approx(10.2 / 10.0)
    assert result.met is True
    slow = BenchResult(group="g", name="n", unit="ms", samples=[60.0], goal=50.0)
    assert slow.ratio is None and slow.met is False
    assert BenchResult(group="g", name="n", unit="%", samples=[1.0]).met is None


def test_registry_run_save_and_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = types.ModuleType("bench.fake_good")

    def run_good(work_dir: Path) -> list[BenchResult]:
        assert work_dir.is_dir()
        return [BenchResult(group="Fake", name="thing", unit="s", samples=[1.0, 2.0, 3.0],
                            baseline=[2.0], goal=1.03, goal_text="ratio ≤ 1.03")]

    good.run = run_good  # type: ignore[attr-defined]
    bad = types.ModuleType("bench.fake_bad")

    def run_bad(work_dir: Path) -> list[BenchResult]:
        raise RuntimeError("boom")

    bad.run = run_bad  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.fake_good", good)
    monkeypatch.setitem(sys.modules, "bench.fake_bad", bad)
    monkeypatch.setattr(bench_run, "REGISTRY", [
        ("fake_good", "a good one", "bench.fake_good:run"),
        ("fake_bad", "a failing one", "bench.fake_bad:run"),
        ("fake_absent", "not written yet", "bench.fake_absent:run")])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name.endswith("absent") else object())
    output = tmp_path / "BENCHMARKS.md"
    output.write_text("# Benchmarks\n\n## Hand-written section\n\nkept\n")
    results = tmp_path / "results"
    assert bench_run.main(["--output", str(output), "--results", str(results),
                           "--work", str(tmp_path)]) == 0
    saved = json.loads((results / "fake_good.json").read_text())
    assert saved["results"][0]["samples"] == [1.0, 2.0, 3.0]
    assert "cpus (nproc)" in saved["machine"]
    assert json.loads((results / "fake_bad.json").read_text())["error"] == "RuntimeError: boom"
    report = output.read_text()
    assert report.startswith("# Benchmarks\n\n## Hand-written section\n\nkept\n")
    assert report.count(bench_run.BEGIN) == 1 and report.count(bench_run.END) == 1
    assert "| thing | 3 | 2.00 s (1.00 s–3.00 s) | 2.00 s (2.00 s–2.00 s) | 1.000 |" in report
    assert "**The module failed:** `RuntimeError: boom`" in report
    assert "fake_absent (`bench.fake_absent:run`, not written yet): not present" in report

    # A partial run keeps the other modules' last figures.
    assert bench_run.main(["--only", "fake_bad", "--output", str(output), "--results",
                           str(results), "--work", str(tmp_path)]) == 0
    again = output.read_text()
    assert "| thing | 3 |" in again and again.count(bench_run.BEGIN) == 1
    assert "## Hand-written section" in again

    # Without the other modules' JSON (a fresh checkout: bench/results/ is not committed), a
    # partial run keeps their sections as the report has them.
    fresh = tmp_path / "fresh-results"
    assert bench_run.main(["--only", "fake_bad", "--output", str(output), "--results",
                           str(fresh), "--work", str(tmp_path)]) == 0
    kept = output.read_text()
    assert "### fake_good: a good one" in kept and "| thing | 3 |" in kept
    assert kept.count("### fake_good") == 1 and kept.count("### fake_bad") == 1
    assert "fake_absent (`bench.fake_absent:run`, not written yet): not present" in kept
    assert kept.count(bench_run.BEGIN) == 1 and "## Hand-written section" in kept
