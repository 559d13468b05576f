"""Which host does an agency's maintenance: forget, prune and the rotating repository check,
the jobs that take restic's exclusive lock (docs/multi-host.md).

An agency's sources may sit on several hosts, each with its own daemon, all backing up into the
agency's one repository: restic lets backups share the repository (non-exclusive locks), but two
hosts pruning it, or one pruning on a schedule after every backup, fail each other's runs (restic
#929, Backrest #244). So exactly one host maintains it: the one `maintenance_host` names (unset:
this host). The others never start forget, prune or check on it.

The config of one host cannot see the config of another, so the repository records the owner: a
*maintenance claim*, a tiny restic snapshot (the file maintenance-claim.json, for a human) tagged
`claim=maintenance` and `claim-agency=<agency>`, made with the owner's `--host`. Why a snapshot
rather than a marker object next to the repository: restic encrypts and authenticates it with
the repository key (no one without the agency's password can forge or alter it, and no second
door to the store is needed, local or S3); `restic snapshots` returns it with the snapshots
every job reads anyway; `restic copy` carries it to the replicas; making one takes restic's
non-exclusive lock only. It carries no `agency=`/`source=` tag, so nothing that lists an
agency's snapshots (restore, drills, `snapshots`, the guard) ever sees it, and retention keeps it.

Who owns the repository is decided from the claims alone, the same way on every host: oldest
first (time, then id), the first claim's host is the owner; a later claim by another host
counts only when it carries `takes-over=<the owner then>` (`drbackup maintenance claim
--take-over`, run on purpose on the new host), otherwise it is a rival and its host is refused.
A host whose config names itself writes its claim when the repository has none and reads the
claims again, so two hosts claiming at once both see the same winner. A host with
`maintenance_host` unset writes nothing: it maintains a repository without claims (one host,
as before) and is refused when another host claimed it.

Claims are read back as hostile input: a claim whose id, host name, agency or takes-over tag is
not exactly of its form stops maintenance altogether (fail closed: nothing is deleted) instead
of being skipped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from drbackup.config.models import AgencyConfig, Config, is_host_name
from drbackup.engine import Snapshot
from drbackup.errors import MaintenanceRefusedError, StateError
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.snapshot_catalogue import repository_snapshots
from drbackup.jobs.tags import is_snapshot_id, tag_values
from drbackup.state import StateDB

log = logging.getLogger(__name__)

CLAIM_TAG = "claim=maintenance"
CLAIM_AGENCY = "claim-agency"
TAKES_OVER = "takes-over"
CLAIM_FILE = "maintenance-claim.json"
CLAIM_DIR = "maintenance"  # under state_dir: the file each claim snapshot holds
CLAIM_FORMAT = "drbackup-maintenance-claim/1"
KV_PREFIX = "maintenance.owner."
MAINTENANCE_JOBS = ("forget", "prune", "check")


@dataclass(frozen=True)
class Claim:
    snapshot_id: str
    host: str
    time: datetime
    takes_over: str | None = None

    @property
    def short_id(self) -> str:
        return self.snapshot_id[:8]


@dataclass(frozen=True)
class Ownership:
    """What the claims in one repository say."""

    agency: str
    store: str
    owner: str | None  # None: no claim yet
    claims: tuple[Claim, ...] = ()
    rivals: tuple[Claim, ...] = ()  # claims of other hosts that did not make them the owner
    deciding: Claim | None = None  # the claim that made `owner` the owner

    def to_json(self) -> dict[str, object]:
        def one(claim: Claim) -> dict[str, object]:
            return {"snapshot_id": claim.snapshot_id, "host": claim.host,
                    "time": claim.time.isoformat(), "takes_over": claim.takes_over}
        return {"agency": self.agency, "store": self.store, "owner": self.owner,
                "deciding_claim": one(self.deciding) if self.deciding else None,
                "claims": [one(c) for c in self.claims], "rivals": [one(c) for c in self.rivals]}


def is_claim(snapshot: Snapshot) -> bool:
    """Whether the snapshot presents itself as a maintenance claim (any `claim=` tag)."""
    return bool(tag_values(snapshot, "claim"))


def _unreadable(agency_id: str, snapshot: Snapshot, why: str) -> MaintenanceRefusedError:
    return MaintenanceRefusedError(
        f"agency {agency_id!r}: maintenance claim {snapshot.id[:8]!r} in the repository cannot "
        f"be trusted ({why}); no forget, prune or check runs while it is there",
        "check who wrote it (only holders of the agency's password can); remove it with "
        "'restic forget ID' on the maintenance host, then run the job again")


def read_claim(agency_id: str, snapshot: Snapshot) -> Claim:
    """The claim a snapshot makes, every part checked.

    Raises MaintenanceRefusedError when any part is not exactly of its form."""
    if not is_snapshot_id(snapshot.id):
        raise _unreadable(agency_id, snapshot, "its id is not 64 hex digits")
    if tag_values(snapshot, "claim") != ["maintenance"]:
        raise _unreadable(agency_id, snapshot, "its claim= tag is not exactly claim=maintenance")
    if tag_values(snapshot, CLAIM_AGENCY) != [agency_id]:
        found = tag_values(snapshot, CLAIM_AGENCY)
        raise _unreadable(agency_id, snapshot, f"it claims agency {found[0][:64]!r}"
                          if len(found) == 1 else f"it has {len(found)} {CLAIM_AGENCY}= tags")
    if not is_host_name(snapshot.hostname):
        raise _unreadable(agency_id, snapshot,
                          f"its host name {snapshot.hostname[:64]!r} is not a host name")
    takes_over = tag_values(snapshot, TAKES_OVER)
    if len(takes_over) > 1 or (takes_over and not is_host_name(takes_over[0])):
        raise _unreadable(agency_id, snapshot, f"its {TAKES_OVER}= tag is not one host name")
    if tag_values(snapshot, "agency") or tag_values(snapshot, "source"):
        raise _unreadable(agency_id, snapshot, "it also carries agency= or source= tags")
    return Claim(snapshot.id, snapshot.hostname, snapshot.time,
                 takes_over[0] if takes_over else None)


def resolve(agency_id: str, store: str, claims: list[Claim]) -> Ownership:
    """The owner by the rules of the module doc, from claims in any order."""
    ordered = sorted(claims, key=lambda c: (c.time, c.snapshot_id))
    owner: str | None = None
    deciding: Claim | None = None
    rivals: list[Claim] = []
    for claim in ordered:
        if owner is None or (claim.host != owner and claim.takes_over == owner):
            owner, deciding = claim.host, claim
        elif claim.host != owner:
            rivals.append(claim)
    rivals = [c for c in rivals if c.host != owner]
    return Ownership(agency_id, store, owner, tuple(ordered), tuple(rivals), deciding)


def repository_ownership(rt: Runtime, agency: AgencyConfig, store: str | None = None, *,
                         fresh: bool = False) -> Ownership:
    """What the claims in the agency's repository in `store` (default: primary) say.

    Raises MaintenanceRefusedError (an unreadable claim) and the errors of reading snapshots."""
    name = store or agency.store
    snapshots = repository_snapshots(rt, agency, name, tags=[CLAIM_TAG], fresh=fresh)
    found = [s for s in snapshots if is_claim(s)]
    ownership = resolve(agency.id, name, [read_claim(agency.id, s) for s in found])
    _remember(rt, ownership)
    return ownership


def _remember(rt: Runtime, ownership: Ownership) -> None:
    """The last answer, for `status` and `report` (they read state, never the repository)."""
    record = {**ownership.to_json(), "checked_at": time.time(), "host": rt.hostname}
    try:
        rt.state.set_value(f"{KV_PREFIX}{ownership.agency}@{ownership.store}",
                           json.dumps(record, separators=(",", ":")))
    except StateError as exc:
        log.warning("maintenance ownership not recorded: %s", exc.one_line())


def remembered_ownership(state: StateDB, agency: AgencyConfig, store: str | None = None
                         ) -> dict[str, object] | None:
    """The last ownership answer this host recorded (Ownership.to_json, checked_at, host), or
    None."""
    return state.get_json_object(f"{KV_PREFIX}{agency.id}@{store or agency.store}")


@dataclass(frozen=True)
class MaintenanceRole:
    """This host's part in an agency's maintenance, from its config and its state (no restic):
    what `status` and `report` show."""

    agency: str
    host: str  # this host
    maintenance_host: str  # by this host's config
    configured_here: bool  # this host's config makes it the owner
    repository_owner: str | None  # what the repository's claims said when last read here
    checked_at: float | None  # when that was (None: never read on this host)

    @property
    def maintains_here(self) -> bool:
        return self.configured_here and self.repository_owner in (None, self.host)


def maintenance_role(config: Config, state: StateDB, agency: AgencyConfig) -> MaintenanceRole:
    me = config.host_name()
    remembered = remembered_ownership(state, agency) or {}
    owner = remembered.get("owner")
    checked = remembered.get("checked_at")
    return MaintenanceRole(
        agency.id, me, agency.maintenance_host or me, config.owns_maintenance(agency),
        owner if isinstance(owner, str) and is_host_name(owner) else None,
        float(checked) if isinstance(checked, int | float) else None)


def maintenance_host(rt: Runtime, agency: AgencyConfig) -> str:
    """The host this host's config names as the agency's maintenance owner."""
    return agency.maintenance_host or rt.hostname


def require_configured_owner(rt: Runtime, agency: AgencyConfig, job: str) -> None:
    """Refuse at once, before restic or the repository is touched, when this host's config gives
    the agency's maintenance to another host.

    Raises MaintenanceRefusedError."""
    if rt.config.owns_maintenance(agency):
        return
    raise MaintenanceRefusedError(
        f"agency {agency.id!r}: {job} is the maintenance host's job, and that is "
        f"{agency.maintenance_host!r}, not this host ({rt.hostname!r}); nothing ran",
        f"run it on {agency.maintenance_host}: only the maintenance host takes restic's "
        "exclusive lock on the agency's repository (maintenance_host in the config)")


def require_owner(rt: Runtime, agency: AgencyConfig, store: str | None, job: str) -> Ownership:
    """Before forget, prune or check of the agency's repository in `store`: this host must be
    its maintenance owner by its config and by the repository's claims; a host configured as
    owner writes its claim when there is none. Call it before the job's first exclusive lock.

    Raises MaintenanceRefusedError, and the errors of reading snapshots or writing the claim."""
    require_configured_owner(rt, agency, job)
    name = store or agency.store
    me = rt.hostname
    ownership = repository_ownership(rt, agency, name)
    if ownership.owner is None and agency.maintenance_host is not None:
        write_claim(rt, agency, name)
        # Read again: a host that claimed at the same moment sees the same claims and the same
        # winner, so exactly one of the two goes on.
        ownership = repository_ownership(rt, agency, name, fresh=True)
    if ownership.owner is not None and ownership.owner != me:
        raise _second_owner(rt, agency, ownership, job)
    for rival in ownership.rivals:
        log.warning("host %s also claimed the maintenance of agency %s (claim %s of %s): it is "
                    "refused; set maintenance_host = %r on it", rival.host, agency.id,
                    rival.short_id, rival.time.isoformat(timespec="seconds"), me,
                    extra={"agency": agency.id, "store": name, "event": "maintenance_rival"})
    return ownership


def _second_owner(rt: Runtime, agency: AgencyConfig, ownership: Ownership, job: str
                  ) -> MaintenanceRefusedError:
    me = rt.hostname
    claim = ownership.deciding
    assert claim is not None and ownership.owner is not None
    when = claim.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if claim.takes_over == me or any(c.host == me for c in ownership.claims
                                     if c.time < claim.time):
        return MaintenanceRefusedError(
            f"agency {agency.id!r}: host {ownership.owner!r} took over its maintenance at "
            f"{when} (claim {claim.short_id}); this host ({me!r}) no longer does {job}",
            f"set maintenance_host = \"{ownership.owner}\" on this host")
    configured = ("is configured as maintenance host too" if agency.maintenance_host
                  else "has no maintenance_host set, so it would maintain the repository too")
    return MaintenanceRefusedError(
        f"agency {agency.id!r}: the repository names host {ownership.owner!r} its maintenance "
        f"host (claim {claim.short_id} of {when}); this host ({me!r}) {configured}: {job} "
        "refused, nothing ran",
        f"set maintenance_host = \"{ownership.owner}\" on this host; if "
        f"{ownership.owner} no longer does maintenance, run 'drbackup maintenance claim "
        f"--agency {agency.id} --take-over' here")


def write_claim(rt: Runtime, agency: AgencyConfig, store: str | None = None, *,
                takes_over: str | None = None) -> str:
    """Make this host's claim snapshot in the agency's repository in `store`; its id."""
    name = store or agency.store
    folder = rt.config.daemon.state_dir / CLAIM_DIR / f"{agency.id}@{name}"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {"format": CLAIM_FORMAT, "agency": agency.id, "store": name, "host": rt.hostname,
            "claimed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "takes_over": takes_over,
            "meaning": "this host does the agency's forget, prune and check (drbackup)"}
    path = folder / CLAIM_FILE
    temp = folder / f".{CLAIM_FILE}.tmp"
    temp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)
    tags = [CLAIM_TAG, f"{CLAIM_AGENCY}={agency.id}"]
    if takes_over:
        tags.append(f"{TAKES_OVER}={takes_over}")
    rt.restic.require_supported()
    rt.check_store(name)
    result = rt.restic.backup(rt.target(agency, name), [CLAIM_FILE], tags=tags,
                              host=rt.hostname, cwd=str(folder))
    snapshot_id = result.summary.snapshot_id or ""
    log.info("claimed the maintenance of agency %s in store %s (snapshot %s%s)", agency.id,
             name, snapshot_id[:8], f", taking over from {takes_over}" if takes_over else "",
             extra={"agency": agency.id, "store": name, "event": "maintenance_claimed"})
    return snapshot_id


@dataclass(frozen=True)
class ClaimOutcome:
    ownership: Ownership
    written: str | None  # the new claim's snapshot id; None when this host already owned it
    took_over_from: str | None = None
    notes: list[str] = field(default_factory=list)


def claim_maintenance(rt: Runtime, agency: AgencyConfig, store: str | None = None, *,
                      take_over: bool = False) -> ClaimOutcome:
    """`drbackup maintenance claim`: make this host the owner of the agency's repository in
    `store`. Only a host whose config names itself; another owner is displaced only with
    `take_over` (the operator's word that it no longer does maintenance).

    Raises MaintenanceRefusedError."""
    me = rt.hostname
    if agency.maintenance_host != me:
        raise MaintenanceRefusedError(
            f"agency {agency.id!r}: this host ({me!r}) is not its maintenance_host "
            f"({agency.maintenance_host or 'unset'}): it does not claim the maintenance",
            f"set maintenance_host = \"{me}\" in this host's config first (and in every other "
            "host's config of the agency)")
    name = store or agency.store
    before = repository_ownership(rt, agency, name, fresh=True)
    if before.owner == me:
        return ClaimOutcome(before, None)
    if before.owner is not None and not take_over:
        raise _second_owner(rt, agency, before, "claim")
    written = write_claim(rt, agency, name, takes_over=before.owner)
    after = repository_ownership(rt, agency, name, fresh=True)
    if after.owner != me:
        raise _second_owner(rt, agency, after, "claim")
    return ClaimOutcome(after, written, before.owner)
