"""`make bench`: run every registered benchmark module and write BENCHMARKS.md.

    python -m bench.run                      # all modules in REGISTRY that exist
    python -m bench.run --only backup_restore,scrape
    DRBACKUP_BENCH_SCALE=0.01 python -m bench.run --output /tmp/B.md   # a quick smoke run

Each module's figures are also kept in bench/results/<module>.json with the machine and load
they were measured under, so a partial run (--only) re-renders the report with the other
modules' last figures instead of dropping them. A module with no JSON here (results are not
committed: a fresh checkout) keeps its section as BENCHMARKS.md has it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import BenchFunction, BenchResult, ModuleOutcome, fmt, machine_facts, scale

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results" / "registry"
# BENCHMARKS.md also holds hand-written sections; the generated report lives between these.
BEGIN = "<!-- bench.run: generated section begins; edit outside it -->"
END = "<!-- bench.run: generated section ends -->"

# Explicit wiring: a benchmark runs because it is listed here: (name, what it measures,
# "module:function" with the run(work_dir) -> list[BenchResult] contract). Scripts written
# before that contract are reached through bench/adapters.py. Absent modules are reported.
# (bench/restore.py, the CLI-level restore comparison, stays a standalone script with its own
# hand-written section: backup_restore measures restore against raw restic already.)
REGISTRY: list[tuple[str, str, str]] = [
    ("backup_restore", "drbackup vs raw restic: backup (first, incremental) and restore",
     "bench.backup_restore:run"),
    ("daemon_idle", "idle daemon RSS/CPU with 100,000 watched files; change-to-snapshot "
     "latency p50/p95", "bench.adapters:daemon_idle"),
    ("scrape", "/metrics scrape latency with 50 agencies", "bench.adapters:scrape"),
    ("verification", "verification cost: share of packs read per day",
     "bench.verify_cost:run"),
    ("drill", "restore-drill throughput and RTO estimate (local store, moto S3)",
     "bench.adapters:drill"),
    ("db_dump", "PostgreSQL dump + backup: drbackup vs pg_dump > file && restic backup",
     "bench.adapters:db_dump"),
    ("guard", "ransomware guard: detection and false alarms per scenario; its cost on backups",
     "bench.guard:run"),
    ("replication", "cross-credential replication (replica written through rclone) vs same-key "
     "restic copy of the same snapshots", "bench.replication:run"),
    ("media", "offline media: export vs cp -r, verify vs a raw read of the same files",
     "bench.media:run"),
    ("fleet_scale", "one daemon with 60 agencies x 3 sources: start-up, idle RSS/CPU, scrape "
     "p99, fairness when every source changes at once; extrapolated to 500 agencies",
     "bench.fleet_scale:run"),
    ("fleet_report", "6 hosts x 10 agencies publishing into one S3 server: fleet report time, "
     "requests and bytes per agency, unchanged by history; extrapolated to 500 agencies",
     "bench.fleet_read:run"),
]


def _descriptions() -> dict[str, str]:
    return {name: text for name, text, _ in REGISTRY}


def run_module(name: str, target: str, work_root: Path) -> ModuleOutcome:
    module_name, _, function_name = target.partition(":")
    if importlib.util.find_spec(module_name) is None:
        return ModuleOutcome(name, present=False)
    module = importlib.import_module(module_name)
    function: BenchFunction | None = getattr(module, function_name or "run", None)
    if function is None:
        return ModuleOutcome(name, error=f"{target} does not exist")
    work = work_root / name
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        results = function(work)
    except Exception as exc:  # noqa: BLE001 - one failing benchmark must not lose the others
        traceback.print_exc()
        return ModuleOutcome(name, seconds=time.monotonic() - started,
                             error=f"{exc.__class__.__name__}: {exc}")
    seconds = time.monotonic() - started
    print(f"bench: {name} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return ModuleOutcome(name, results=results, seconds=seconds)


def save(outcome: ModuleOutcome, facts: dict[str, str], results_dir: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "module": outcome.module,
        "seconds": outcome.seconds,
        "error": outcome.error,
        "machine": facts,
        "scale": scale(),
        "load_at_end": " / ".join(f"{v:.2f}" for v in os.getloadavg()),
        "results": [asdict(r) for r in outcome.results],
    }
    (results_dir / f"{outcome.module}.json").write_text(json.dumps(payload, indent=1) + "\n")


def load_saved(results_dir: Path) -> dict[str, dict[str, Any]]:
    saved = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            saved[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return saved


def _verdict(result: BenchResult) -> str:
    if result.met is None:
        return "–"
    return "met" if result.met else "**not met**"


def _row(result: BenchResult) -> str:
    lo, hi = min(result.samples), max(result.samples)
    figure = f"{fmt(result.median, result.unit)} ({fmt(lo, result.unit)}–{fmt(hi, result.unit)})"
    if result.baseline:
        base = result.baseline
        baseline = (f"{fmt(statistics.median(base), result.unit)} "
                    f"({fmt(min(base), result.unit)}–{fmt(max(base), result.unit)})")
        ratio = f"{result.ratio:.3f}" if result.ratio is not None else "?"
    else:
        baseline, ratio = "", ""
    goal = result.goal_text or (f"{result.goal_op} {result.goal}" if result.goal else "")
    return (f"| {result.name} | {len(result.samples)} | {figure} | {baseline} | {ratio} | "
            f"{goal} | {_verdict(result)} |")


def merge_into(existing: str, generated: str) -> str:
    """The file with its generated section replaced (or appended), hand-written parts kept."""
    block = f"{BEGIN}\n{generated.rstrip()}\n{END}\n"
    if BEGIN in existing and END in existing:
        head, rest = existing.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + block + ("\n" + tail if tail else "")
    if not existing.strip():
        return "# Benchmarks\n\n" + block
    return existing.rstrip() + "\n\n" + block


def generated_sections(existing: str) -> dict[str, str]:
    """The per-module sections ("### name: ...") of the generated block of an existing report,
    by module name, each with its trailing blank line."""
    if BEGIN not in existing or END not in existing:
        return {}
    block = existing.split(BEGIN, 1)[1].split(END, 1)[0]
    sections: dict[str, str] = {}
    for chunk in block.split("\n### ")[1:]:
        name = chunk.split(":", 1)[0].split("\n", 1)[0].strip()
        if name and name != "Not measured yet":
            sections[name] = "### " + chunk.rstrip("\n") + "\n"
    return sections


def render(saved: dict[str, dict[str, Any]], order: list[str],
           kept: dict[str, str] | None = None) -> str:
    """The generated block: each module's section from its saved JSON, else as `kept` (the
    existing report) has it, else listed as not measured."""
    kept = {n: t for n, t in (kept or {}).items() if n not in saved}
    lines = [
        "## Generated by `make bench`",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. Figures are",
        "medians with min–max of the runs; comparisons are interleaved runs of drbackup and raw",
        "restic on the same data and the same repository, and the ratio is of the medians.",
        "Each section names the machine, date and load it was measured under.",
        "",
    ]
    names = [n for n in order if n in saved or n in kept] + sorted(set(saved) - set(order))
    absent = [n for n in order if n not in saved and n not in kept]
    for name in names:
        if name not in saved:
            lines += kept[name].split("\n")
            continue
        entry = saved[name]
        results = [BenchResult(**r) for r in entry.get("results", [])]
        description = _descriptions().get(name, "")
        lines += [f"### {name}" + (f": {description}" if description else ""), ""]
        machine = entry.get("machine", {})
        facts = [f"{k}: {v}" for k, v in machine.items()]
        facts.append(f"load average at end: {entry.get('load_at_end', '?')}")
        facts.append(f"wall time of this module: {entry.get('seconds', 0):.0f} s")
        if entry.get("scale", 1) != 1:
            facts.append(f"**scaled-down run** (DRBACKUP_BENCH_SCALE={entry['scale']})")
        lines += [f"- {fact}" for fact in facts] + [""]
        if entry.get("error"):
            lines += [f"**The module failed:** `{entry['error']}`", ""]
        groups: dict[str, list[BenchResult]] = {}
        for result in results:
            groups.setdefault(result.group, []).append(result)
        for group, members in groups.items():
            lines += [f"#### {group}", "",
                      "| measure | runs | drbackup / value: median (min–max) | "
                      "baseline: median (min–max) | ratio | goal | verdict |",
                      "|---|---|---|---|---|---|---|"]
            lines += [_row(r) for r in members]
            notes = [f"- *{r.name}*: {r.note}" for r in members if r.note]
            lines += (["", *notes] if notes else []) + [""]
    if absent:
        lines += ["### Not measured yet", ""]
        targets = {n: t for n, _, t in REGISTRY}
        lines += [f"- {n} (`{targets[n]}`, {_descriptions()[n]}): not present" for n in absent]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated module names (default: all)")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help="where each module's figures are kept as JSON")
    parser.add_argument("--work", type=Path, help="scratch directory (default: a temp dir)")
    args = parser.parse_args(argv)
    names = [n for n, _, _ in REGISTRY]
    targets = {n: t for n, _, t in REGISTRY}
    wanted = args.only.split(",") if args.only else names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="drbackup-bench-",
                                     dir=args.work) as scratch:
        for name in wanted:
            facts = machine_facts()  # the date and load this module started under
            outcome = run_module(name, targets[name], Path(scratch))
            if outcome.present:
                save(outcome, facts, args.results)
    existing = args.output.read_text() if args.output.exists() else ""
    generated = render(load_saved(args.results), names, generated_sections(existing))
    args.output.write_text(merge_into(existing, generated))
    print(f"bench: wrote {args.output} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
