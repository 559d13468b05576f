"""Two things a replica must be before anything is copied into it: another repository than the
primary, and this agency's (wrong-site safety, compared by restic repository id, never by URL:
two URLs can name one bucket, through an alias, a CNAME or a prefix typed twice); and inside its
copy window (`copy_window`, the hours the inter-site link may carry it).

Repository ids seen by replication are remembered in state (kv `repository-id:<id>` → the
agency that owns it), so a replica that is in fact another agency's repository is refused even
when that agency's password opens nothing here; snapshots tagged for another agency refuse it too.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from drbackup.config.models import AgencyConfig
from drbackup.config.models.stores import parse_window
from drbackup.engine import RepoTarget, Snapshot
from drbackup.errors import DrBackupError, ExitCode, TargetRefusedError
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import agency_tag

ID_KEY = "repository-id:{id}"
_REPO_ID = re.compile(r"[0-9a-f]{64}")


class OutsideCopyWindow(DrBackupError):
    exit_code = ExitCode.REPLICATION_CUT


def now() -> datetime:
    """Local wall-clock time (a function so tests can move it)."""
    return datetime.now().astimezone()


def window_seconds_left(window: str | None, at: datetime) -> float | None:
    """Seconds until the window closes, 0 when it is closed, None when there is no window."""
    if window is None:
        return None
    start, end = parse_window(window)
    today_start = at.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    today_end = at.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if start < end:
        return max(0.0, (today_end - at).total_seconds()) if today_start <= at < today_end \
            else 0.0
    # Spans midnight: open from start to 24:00 and from 00:00 to end.
    if at >= today_start:
        return (today_end + timedelta(days=1) - at).total_seconds()
    if at < today_end:
        return (today_end - at).total_seconds()
    return 0.0


def next_opening(window: str, at: datetime) -> datetime:
    start, _ = parse_window(window)
    opening = at.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
    return opening if opening > at else opening + timedelta(days=1)


def copy_time_left(rt: Runtime, replica: str) -> float | None:
    """Seconds the copy into `replica` may run now (None: no window). Raises
    OutsideCopyWindow (exit 28) when the window is closed."""
    window = rt.store_config(replica).copy_window
    at = now()
    left = window_seconds_left(window, at)
    if left is not None and left < 1.0:
        assert window is not None
        opens = next_opening(window, at)
        raise OutsideCopyWindow(
            f"replication into store {replica!r} waits for its copy window {window} "
            f"(opens {opens:%Y-%m-%d %H:%M})",
            "run it inside the window, or widen copy_window in the store's config")
    return left


def repository_id(rt: Runtime, target: RepoTarget) -> str:
    """restic's repository id (cat config), checked to be one (it is read from a store)."""
    value = rt.restic.repository_config(target).get("id")
    if not isinstance(value, str) or not _REPO_ID.fullmatch(value):
        raise TargetRefusedError(f"repository {target.display} reports no valid id",
                                 "run 'restic cat config' on it and check the store")
    return value


def refuse_wrong_site(rt: Runtime, agency: AgencyConfig, replica: str,
                      copies: list[Snapshot]) -> None:
    """Refuse (TargetRefusedError, one line) a replica that is the primary itself, or another
    agency's repository; remember both ids for the next check."""
    primary_id = repository_id(rt, rt.target(agency))
    replica_id = repository_id(rt, rt.target(agency, replica))
    where = f"store {replica!r}"
    if replica_id == primary_id:
        raise TargetRefusedError(
            f"replica {agency.id}@{replica} is the primary repository itself (same restic "
            f"repository id {replica_id[:12]}): {where} points at the primary's bucket/prefix",
            "give the replica store another bucket or prefix, at another site")
    for repo_id in (primary_id, replica_id):
        owner = rt.state.get_value(ID_KEY.format(id=repo_id))
        if owner is not None and owner != agency.id:
            raise TargetRefusedError(
                f"replica {agency.id}@{replica} is refused: repository {repo_id[:12]} belongs "
                f"to agency {owner!r}", f"check the url of {where} and the agency's id")
    mine = agency_tag(agency.id)
    foreign = sorted({t for s in copies for t in s.tags
                      if t.startswith("agency=") and t != mine})
    if foreign:
        raise TargetRefusedError(
            f"replica {agency.id}@{replica} is refused: it holds snapshots of another agency "
            f"({foreign[0][:80]!r})", f"check the url of {where}; each agency has its own "
            "repository")
    for repo_id in (primary_id, replica_id):
        rt.state.set_value(ID_KEY.format(id=repo_id), agency.id)
