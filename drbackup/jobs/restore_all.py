"""`restore --all-sources`: every source of an agency, whole, into TARGET/<source id> — as a plan
and its execution, like restic's PlanPrune → Execute (#15 item 7). The CLI renders the plan's
refusals, each source's restore and the total; it decides nothing.

The plan trusts no tag: a snapshot whose id or `agency=`/`source=`/`kind=` tags are not plain
ids (written by whoever holds the agency's password, e.g. `source=../../etc/cron.d`) is refused
and reported, and every target is checked to stay inside the base (#14 hole 4). One source's
failure does not stop the others: in a disaster everything that can come back should."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from drbackup.config.models import AgencyConfig
from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError, ExitCode, NotFoundError, TargetRefusedError
from drbackup.jobs.restore import check_restore_target, list_snapshots, pick_snapshot
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import contained, tag_id, tag_problem


@dataclass(frozen=True)
class PlannedSource:
    source: str
    snapshot: Snapshot
    target: Path


@dataclass(frozen=True)
class RefusedSnapshot:
    snapshot_id: str
    problem: str


@dataclass(frozen=True)
class AllSourcesPlan:
    agency: str
    base: Path
    store_name: str | None
    sources: tuple[PlannedSource, ...]
    missing: tuple[str, ...]  # sources with no snapshot (at that time)
    refused: tuple[RefusedSnapshot, ...]
    at_text: str | None = None
    store_shown: str = ""

    @property
    def wanted(self) -> int:
        return len(self.sources) + len(self.missing)


def plan_all_sources(rt: Runtime, agency: AgencyConfig, *, base: Path,
                     at: datetime | None = None, at_text: str | None = None,
                     store_name: str | None = None) -> AllSourcesPlan:
    """Which snapshot of each source (configured ones first, then those only snapshots name)
    goes where, and which snapshots were refused for their tags."""
    by_source: dict[str, list[Snapshot]] = {}
    refused: list[RefusedSnapshot] = []
    for snapshot in list_snapshots(rt, agency, store_name=store_name):
        problem = tag_problem(snapshot)
        if problem is not None:
            refused.append(RefusedSnapshot(snapshot.id[:64], problem))
            continue
        by_source.setdefault(tag_id(snapshot, "source") or "", []).append(snapshot)
    configured = [s.id for s in agency.sources]
    order = [*configured, *sorted(set(by_source) - set(configured) - {""})]
    planned: list[PlannedSource] = []
    missing: list[str] = []
    for source_id in order:
        try:
            snapshot = pick_snapshot(by_source.get(source_id, []), at=at)
        except NotFoundError:
            missing.append(source_id)
            continue
        planned.append(PlannedSource(source_id, snapshot, contained(base, source_id)))
    return AllSourcesPlan(agency.id, base, store_name, tuple(planned), tuple(missing),
                          tuple(refused), at_text, store_name or agency.store)


def check_plan(plan: AllSourcesPlan, *, overwrite: bool, dry_run: bool) -> None:
    """Before any restore starts (after the refused snapshots were shown): TargetRefusedError
    when every snapshot was refused or a target is refused, NotFoundError when there is
    nothing to restore."""
    if not plan.sources and plan.refused:
        raise TargetRefusedError(
            f"agency {plan.agency!r}: every snapshot found has tags that cannot be trusted "
            f"({len(plan.refused)} skipped)", "see the lines above; check who wrote them")
    if not plan.sources:
        raise NotFoundError(f"agency {plan.agency!r} has no snapshot to restore"
                            f"{' at or before ' + plan.at_text if plan.at_text else ''} in "
                            f"store {plan.store_shown!r}", "list them with 'drbackup snapshots'")
    if not dry_run:
        for item in plan.sources:
            check_restore_target(item.target, overwrite=overwrite)


@dataclass
class AllSourcesOutcome:
    plan: AllSourcesPlan
    restored: list[str] = field(default_factory=list)
    failed: list[tuple[str, DrBackupError]] = field(default_factory=list)
    errors: int = 0  # files restic could not restore, over all sources
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """The first failure's code; else untrusted snapshots (14), missing sources (19),
        unreadable files (3), or 0."""
        if self.failed:
            return int(self.failed[0][1].exit_code)
        if self.plan.refused:
            return int(ExitCode.TARGET_REFUSED)
        if self.plan.missing:
            return int(ExitCode.NOT_FOUND)
        return int(ExitCode.PARTIAL) if self.errors else 0


def execute_all_sources(plan: AllSourcesPlan, restore_one: Callable[[PlannedSource], int],
                        on_failure: Callable[[PlannedSource, DrBackupError], None]
                        ) -> AllSourcesOutcome:
    """Restore each planned source with `restore_one` (returns its count of file errors); a
    failure is passed to `on_failure` and the next source goes on."""
    outcome = AllSourcesOutcome(plan)
    started = time.monotonic()
    for item in plan.sources:
        try:
            outcome.errors += restore_one(item)
        except DrBackupError as exc:
            outcome.failed.append((item.source, exc))
            on_failure(item, exc)
            continue
        outcome.restored.append(item.source)
    outcome.seconds = time.monotonic() - started
    return outcome
