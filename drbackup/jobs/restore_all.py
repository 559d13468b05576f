"""`restore --all-sources`: every source of an agency, whole, into TARGET/<source id> — as a plan
and its execution, like restic's PlanPrune → Execute (#15 item 7). The CLI renders the plan's
refusals, each source's restore and the total; it decides nothing.

The plan trusts no tag: a snapshot whose id or `agency=`/`source=`/`kind=` tags are not plain
ids (written by whoever holds the agency's password, e.g. `source=../../etc/cron.d`) is refused
and reported, and every target is checked to stay inside the base (#14 hole 4). One source's
failure does not stop the others: in a disaster everything that can come back should.

With `last_clean` (#16), a source the ransomware guard judged comes back from its last clean
snapshot; one without verdicts (a database, a drop folder, the guard off) from its newest
snapshot taken before the agency's retention freeze began, or its latest when not frozen. Each
planned source carries the rule that chose its snapshot, and a source no rule finds one for is
missing, with the reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drbackup.config.models import AgencyConfig
from drbackup.engine import Snapshot
from drbackup.errors import DrBackupError, ExitCode, NotFoundError, TargetRefusedError
from drbackup.jobs.restore import (
    BEFORE_FREEZE,
    LATEST,
    GuardChoice,
    check_restore_target,
    choose_clean,
    clean_candidates,
    list_snapshots,
    pick_snapshot,
)
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import contained, tag_id, tag_problem
from drbackup.state import guard as records


@dataclass(frozen=True)
class PlannedSource:
    source: str
    snapshot: Snapshot
    target: Path
    choice: GuardChoice | None = None  # with --last-clean: the rule that chose the snapshot


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
    unchosen: tuple[tuple[str, str], ...] = ()  # missing sources no --last-clean rule served

    @property
    def wanted(self) -> int:
        return len(self.sources) + len(self.missing)


def plan_all_sources(rt: Runtime, agency: AgencyConfig, *, base: Path,
                     at: datetime | None = None, at_text: str | None = None,
                     store_name: str | None = None, last_clean: bool = False
                     ) -> AllSourcesPlan:
    """Which snapshot of each source (configured ones first, then those only snapshots name)
    goes where, and which snapshots were refused for their tags; `last_clean` chooses by the
    guard's rules (module doc) instead of the latest or `at`."""
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
    unchosen: list[tuple[str, str]] = []
    shown = store_name or agency.store
    freeze = records.open_freeze(rt.state, agency.id) if last_clean else None
    for source_id in order:
        if last_clean and by_source.get(source_id):
            try:
                choice = guard_choice(rt, agency, source_id, by_source[source_id], freeze,
                                      shown)
            except (NotFoundError, TargetRefusedError) as exc:
                missing.append(source_id)
                unchosen.append((source_id, exc.one_line()))
                continue
            planned.append(PlannedSource(source_id, choice.snapshot,
                                         contained(base, source_id), choice))
            continue
        try:
            snapshot = pick_snapshot(by_source.get(source_id, []), at=at)
        except NotFoundError:
            missing.append(source_id)
            continue
        planned.append(PlannedSource(source_id, snapshot, contained(base, source_id)))
    return AllSourcesPlan(agency.id, base, store_name, tuple(planned), tuple(missing),
                          tuple(refused), at_text, shown, tuple(unchosen))


def guard_choice(rt: Runtime, agency: AgencyConfig, source_id: str, snapshots: list[Snapshot],
                 freeze: records.FreezeRecord | None, store: str) -> GuardChoice:
    """--last-clean for one source of --all-sources. Raises NotFoundError (no snapshot fits
    its rule) and TargetRefusedError (see restore.choose_clean)."""
    candidates = clean_candidates(rt, agency, source_id)
    if candidates is not None:
        return choose_clean(candidates, snapshots, store)
    return choose_unjudged(snapshots, freeze)


def _when(moment: datetime, *, seconds: bool = False) -> str:
    return f"{moment.astimezone():%Y-%m-%d %H:%M{':%S' if seconds else ''}}"


def choose_unjudged(snapshots: list[Snapshot], freeze: records.FreezeRecord | None
                    ) -> GuardChoice:
    """For a source without verdicts (a database, a drop folder, guard off): the newest
    snapshot taken before the agency's freeze began, or its latest when not frozen.

    Raises NotFoundError when there is none."""
    ordered = sorted(snapshots, key=lambda s: s.time)
    if freeze is None:
        if not ordered:
            raise NotFoundError("there are no snapshots to restore from",
                                "check the agency and source, or run a backup first")
        latest = ordered[-1]
        return GuardChoice(latest, LATEST,
                           f"latest snapshot {latest.short_id} of {_when(latest.time)}: no "
                           "guard verdicts for this source, and the agency is not frozen")
    since = datetime.fromtimestamp(freeze.since, UTC)
    before = [s for s in ordered if s.time < since]
    frozen = (f"the freeze began {_when(since, seconds=True)} (suspect "
              f"{freeze.snapshot_id[:8]} of source {freeze.source})")
    if not before:
        raise NotFoundError(f"no snapshot taken before {frozen}",
                            "restore a later one by --snapshot ID after checking it")
    chosen = before[-1]
    return GuardChoice(chosen, BEFORE_FREEZE,
                       f"snapshot {chosen.short_id} of {_when(chosen.time)}, the newest before "
                       f"{frozen}: no guard verdicts for this source")


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
