"""Who maintains an agency's repository, as data: the claim rules (first claim wins, a later one
only with takes-over=<owner>), every part of a claim read back as hostile, retention never
forgetting a claim, and the daemon scheduling forget, prune and check on the owner only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drbackup.config.models import Config
from drbackup.daemon.tasks import PERIODIC_TASKS
from drbackup.engine import ForgetGroup, Snapshot
from drbackup.errors import ExitCode, MaintenanceRefusedError
from drbackup.jobs.maintenance import (
    CLAIM_TAG,
    Claim,
    is_claim,
    read_claim,
    require_configured_owner,
    resolve,
)
from drbackup.jobs.retention import checked_plan
from drbackup.jobs.runtime import Runtime

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def claim(host: str, minutes: int, takes_over: str | None = None, sid: str = "") -> Claim:
    return Claim((sid or f"{minutes:02d}{host}")[:64].ljust(64, "0"), host,
                 T0 + timedelta(minutes=minutes), takes_over)


def claim_snapshot(host: str = "host-a", tags: list[str] | None = None,
                   sid: str = "ab" * 32) -> Snapshot:
    return Snapshot(id=sid, time=T0, hostname=host, paths=["/x/maintenance-claim.json"],
                    tags=tags if tags is not None else [CLAIM_TAG, "claim-agency=planning"])


def test_the_first_claim_wins_and_later_ones_are_rivals() -> None:
    found = resolve("planning", "local", [claim("host-b", 5), claim("host-a", 1),
                                          claim("host-a", 9)])
    assert found.owner == "host-a" and found.deciding == claim("host-a", 1)
    assert [c.host for c in found.rivals] == ["host-b"]


def test_the_same_answer_whatever_order_the_claims_come_in() -> None:
    claims = [claim("host-a", 1), claim("host-b", 1, sid="00" * 32), claim("host-c", 3)]
    answers = {resolve("p", "s", order).owner for order in (claims, claims[::-1],
                                                             claims[1:] + claims[:1])}
    assert answers == {"host-b"}  # same time: the smaller id decides


def test_a_take_over_moves_the_maintenance_only_from_the_owner() -> None:
    moved = resolve("p", "s", [claim("host-a", 1), claim("host-b", 2, takes_over="host-a")])
    assert moved.owner == "host-b" and moved.rivals == ()
    wrong = resolve("p", "s", [claim("host-a", 1), claim("host-b", 2, takes_over="host-x")])
    assert wrong.owner == "host-a" and [c.host for c in wrong.rivals] == ["host-b"]
    chain = resolve("p", "s", [claim("host-a", 1), claim("host-b", 2, takes_over="host-a"),
                               claim("host-c", 3, takes_over="host-b"), claim("host-a", 4)])
    assert chain.owner == "host-c" and [c.host for c in chain.rivals] == ["host-a"]


def test_no_claim_no_owner() -> None:
    assert resolve("p", "s", []).owner is None


def test_a_well_formed_claim_is_read() -> None:
    read = read_claim("planning", claim_snapshot(
        tags=[CLAIM_TAG, "claim-agency=planning", "takes-over=old-host.city.gov"]))
    assert (read.host, read.takes_over) == ("host-a", "old-host.city.gov")


@pytest.mark.parametrize(("snapshot", "why"), [
    (claim_snapshot(sid="zz" * 32), "64 hex"),
    (claim_snapshot(host="evil host"), "not a host name"),
    (claim_snapshot(host="-rf"), "not a host name"),
    (claim_snapshot(host="a\nb"), "not a host name"),
    (claim_snapshot(host=""), "not a host name"),
    (claim_snapshot(tags=[CLAIM_TAG, "claim=maintenance", "claim-agency=planning"]),
     "exactly claim=maintenance"),
    (claim_snapshot(tags=[CLAIM_TAG, "claim-agency=parks"]), "claims agency 'parks'"),
    (claim_snapshot(tags=[CLAIM_TAG]), "0 claim-agency= tags"),
    (claim_snapshot(tags=[CLAIM_TAG, "claim-agency=planning", "claim-agency=planning"]),
     "2 claim-agency= tags"),
    (claim_snapshot(tags=[CLAIM_TAG, "claim-agency=planning", "takes-over=../x"]),
     "takes-over= tag"),
    (claim_snapshot(tags=[CLAIM_TAG, "claim-agency=planning", "takes-over=a",
                          "takes-over=b"]), "takes-over= tag"),
    (claim_snapshot(tags=[CLAIM_TAG, "claim-agency=planning", "source=docs"]),
     "agency= or source="),
])
def test_a_claim_not_exactly_of_its_form_stops_maintenance(snapshot: Snapshot, why: str
                                                           ) -> None:
    with pytest.raises(MaintenanceRefusedError, match=why) as raised:
        read_claim("planning", snapshot)
    assert raised.value.exit_code == ExitCode.MAINTENANCE_REFUSED
    assert int(raised.value.exit_code) == 29
    assert "\n" not in raised.value.one_line()


def test_retention_never_forgets_a_claim() -> None:
    old = claim_snapshot(sid="cd" * 32)
    old = Snapshot(id=old.id, time=T0 - timedelta(days=90), hostname="host-a",
                   paths=old.paths, tags=old.tags)
    new = claim_snapshot()
    assert is_claim(old) and is_claim(new)
    groups = [ForgetGroup(tags=new.tags, host="host-a", paths=new.paths, keep=[new],
                          remove=[old], reasons={new.id: ["within 1h"]})]
    keep, remove = checked_plan("planning", [old, new], groups, T0)
    assert remove == [] and [s.id for s in keep] == [old.id, new.id]
    assert keep[0].reasons == ["maintenance claim: never forgotten"]


def _config(tmp_path: Path, maintenance_host: str | None, hostname: str = "host-b") -> Config:
    agency: dict[str, object] = {
        "id": "planning", "password_file": str(tmp_path / "pw"),
        "retention": {"keep_within": "30d", "schedule": "every 5s", "prune_schedule": "every 7s"},
        "verify": {"check_schedule": "every 9s", "drill_schedule": "every 11s"}}
    if maintenance_host is not None:
        agency["maintenance_host"] = maintenance_host
    return Config.model_validate({"daemon": {"state_dir": str(tmp_path / "state"),
                                             "hostname": hostname}, "agencies": [agency]})


def _scheduled(config: Config) -> set[str]:
    agency = config.agencies[0]
    return {task.kind for task in PERIODIC_TASKS if task.schedule(config, agency)}


def test_the_daemon_schedules_maintenance_on_the_maintenance_host_only(tmp_path: Path) -> None:
    maintenance = {"forget", "prune", "check"}
    assert maintenance <= _scheduled(_config(tmp_path, "host-b"))
    assert maintenance <= _scheduled(_config(tmp_path, None))  # one host, as before
    elsewhere = _scheduled(_config(tmp_path, "host-a"))
    assert not maintenance & elsewhere
    assert "drill" in elsewhere  # its own drills stay


def test_a_host_not_named_refuses_before_anything_runs(tmp_path: Path) -> None:
    config = _config(tmp_path, "host-a")
    rt = Runtime.create(config)
    with pytest.raises(MaintenanceRefusedError) as raised:
        require_configured_owner(rt, config.agencies[0], "prune")
    text = raised.value.one_line()
    assert "'host-a'" in text and "'host-b'" in text and "run it on host-a" in text
    assert not (tmp_path / "state").exists()  # not even the state database was opened


def test_maintenance_host_must_be_a_host_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a valid host name"):
        _config(tmp_path, "host a; rm -rf /")
