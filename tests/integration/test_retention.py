"""Retention against the real moto S3 server and real restic: a synthetic 400-day history
(backups with --time) is thinned exactly per policy, --dry-run lists the very set a real run then
removes, snapshots inside keep_within always survive, and unsafe plans are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drbackup.engine import RepoTarget, Snapshot
from drbackup.errors import ExitCode
from tests.support.offsite import runtime, small_tree
from tests.support.servers import MotoServer
from tests.support.workspace import Workspace

TAGS = ["agency=planning", "source=documents", "kind=directory"]
POLICY = {"keep_within": "10d", "keep_daily": 5, "keep_weekly": 4, "keep_monthly": 6,
          "keep_yearly": 3}


def expected_keep(snapshots: list[Snapshot], policy: dict[str, object]) -> set[str]:
    """An independent statement of the policy (restic's documented semantics): keep_within
    counts back from the newest snapshot; each keep_<period> keeps the newest snapshot of each
    of the last N periods that have one, and the oldest snapshot when fewer than N periods
    have one (restic >= 0.16: "oldest yearly snapshot")."""
    ordered = sorted(snapshots, key=lambda s: s.time, reverse=True)
    newest = ordered[0].time
    within = timedelta(days=int(str(policy["keep_within"]).removesuffix("d")))
    keep = {s.id for s in ordered if s.time > newest - within}
    buckets: dict[str, Callable[[datetime], object]] = {
        "keep_daily": lambda t: (t.year, t.month, t.day),
        "keep_weekly": lambda t: tuple(t.isocalendar())[:2],
        "keep_monthly": lambda t: (t.year, t.month),
        "keep_yearly": lambda t: t.year,
    }
    for rule, bucket in buckets.items():
        remaining = int(str(policy.get(rule, 0)))
        last: object = None
        for snap in ordered:
            if remaining <= 0:
                break
            value = bucket(snap.time)
            if value != last:
                keep.add(snap.id)
                remaining -= 1
                last = value
        if remaining > 0:
            keep.add(ordered[-1].id)
    return keep


def test_400_day_history_is_thinned_exactly_per_policy(
        workspace: Workspace, s3_server: MotoServer, bucket: str, tmp_path: Path) -> None:
    data = small_tree(tmp_path / "data", files=3)
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("planning", store="offsite", retention=POLICY)
    workspace.add_directory_source("planning", "documents", [data])
    workspace.cli("repo", "init", check=True)

    rt = runtime(workspace)
    agency = rt.config.agency("planning")
    target = rt.target(agency)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    # Every 40 days over 400 days, plus four in the last week (inside keep_within). Built in a
    # local repository (one restic process per snapshot is cheap there), then copied to the S3
    # repository in one `restic copy`, which keeps each snapshot's time.
    ages = [timedelta(days=d, hours=5) for d in range(400, 10, -40)]
    ages += [timedelta(days=6, hours=3), timedelta(days=3), timedelta(days=1, hours=2),
             timedelta(hours=2)]
    staging = RepoTarget(str(tmp_path / "staging-repo"), agency.password_file, label="staging")
    rt.restic.init(staging, copy_chunker_params_from=target)
    for age in ages:
        rt.restic.backup(staging, [str(data)], tags=TAGS, host="test-host", time=now - age)
    rt.restic.copy(staging, target)
    history = rt.restic.snapshots(target)
    assert len(history) == len(ages) == 14
    assert history[-1].time - history[0].time > timedelta(days=395)
    keep = expected_keep(history, POLICY)
    assert 0 < len(keep) < len(history)
    newest = max(s.time for s in history)
    inside_window = {s.id for s in history if s.time > newest - timedelta(days=10)}
    assert len(inside_window) == 4

    planned = workspace.cli("--json", "forget", "--agency", "planning", "--dry-run",
                            check=True)
    plan = json.loads(planned.stdout)
    planned_remove = {s["id"] for s in plan["remove"]}
    assert {s["id"] for s in plan["keep"]} == keep
    assert planned_remove == {s.id for s in history} - keep
    assert all(s["reasons"] for s in plan["keep"])  # each kept one says why
    assert len(rt.restic.snapshots(target)) == 14  # a dry run removes nothing

    done = workspace.cli("--json", "forget", "--agency", "planning", check=True)
    assert set(json.loads(done.stdout)["removed"]) == planned_remove
    remaining = {s.id for s in rt.restic.snapshots(target)}
    assert remaining == keep
    assert inside_window <= remaining
    runs = rt.state.runs(agency="planning", job="forget")
    assert [r.result for r in runs] == ["success", "success"]
    assert runs[0].details["removed"] == len(planned_remove)

    # A snapshot dated in the future would shift keep_within: the run is refused.
    rt.restic.backup(target, [str(data)], tags=TAGS, host="test-host",
                     time=now + timedelta(days=30))
    refused = workspace.cli("forget", "--agency", "planning")
    assert refused.returncode == ExitCode.VERIFY_FAILED
    assert "dated in the future" in refused.stderr and "Traceback" not in refused.stderr
    assert len(rt.restic.snapshots(target)) == len(keep) + 1
    rt.close()


def test_forget_without_retention_policy_is_a_config_error(
        workspace: Workspace, s3_server: MotoServer, bucket: str) -> None:
    workspace.add_s3_store("offsite", s3_server, bucket)
    workspace.add_agency("planning", store="offsite")
    result = workspace.cli("forget", "--agency", "planning", "--dry-run")
    assert result.returncode == ExitCode.CONFIG
    assert "has no retention policy" in result.stderr
