"""Issue 18 scope 2 with the real restic on one shared local repository: the maintenance host
records its claim in the repository; a second host configured as owner (or with no
maintenance_host at all) is refused in one line (exit 29) from what the repository says, without
writing a claim of its own or starting any restic verb that takes the exclusive lock; a host
that names another as owner starts no restic at all; ownership moves only by an explicit
take-over; two hosts claiming at once end with one owner; a forged claim stops maintenance."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from tests.support.hosts import AGENCY, host, plain_restic, restic_log, restic_verbs, snapshots
from tests.support.workspace import Workspace

EXCLUSIVE = {"forget", "prune", "check", "tag"}
PASSWORD = "shared-agency-password-for-the-test"


@dataclass
class Shared:
    root: Path
    repos: Path
    restic: str

    def host(self, name: str, maintenance_host: str | None, source: str | None = None
             ) -> Workspace:
        data = None
        if source is not None:
            data = self.root / "data" / name
            data.mkdir(parents=True, exist_ok=True)
            (data / f"{source}.txt").write_text(f"{source} of {name}\n")
        return host(self.root, name, restic=self.restic, repos=self.repos, password=PASSWORD,
                    maintenance_host=maintenance_host, source=source, data=data)

    def claims(self, ws: Workspace) -> list[dict[str, object]]:
        return [s for s in snapshots(ws, self.repos, self.restic)
                if "claim=maintenance" in (s.get("tags") or [])]


@pytest.fixture
def shared(tmp_path: Path, restic_binary: str) -> Iterator[Shared]:
    yield Shared(tmp_path, tmp_path / "repos", restic_binary)


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("drbackup: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_a_second_owner_is_refused_from_the_repository(shared: Shared) -> None:
    owner = shared.host("host-a", "host-a", source="docs")
    owner.cli("repo", "init", check=True)
    owner.cli("backup", "--agency", AGENCY, "--no-progress", check=True)
    owner.cli("forget", "--agency", AGENCY, check=True)
    claims = shared.claims(owner)
    assert [c["hostname"] for c in claims] == ["host-a"]
    listed = owner.cli("--json", "snapshots", "--agency", AGENCY, check=True)
    assert [s["source"] for s in json.loads(listed.stdout)] == ["docs"]  # the claim is not one

    second = shared.host("host-d", "host-d")
    unset = shared.host("host-e", None)
    for ws, configured, verbs in (
            (second, "is configured as maintenance host too",
             (["forget", "--dry-run"], ["prune"], ["verify", "--kind", "check"])),
            (unset, "has no maintenance_host set", (["forget"],))):
        for verb in verbs:
            result = ws.cli(verb[0], "--agency", AGENCY, *verb[1:])
            assert result.returncode == ExitCode.MAINTENANCE_REFUSED, result.stderr
            assert int(result.returncode) == 29
            line = _one_error(result)
            assert "names host 'host-a' its maintenance host" in line, line
            assert configured in line and f"'{ws.config['daemon']['hostname']}'" in line
        assert not EXCLUSIVE & set(restic_verbs(restic_log(ws))), restic_verbs(restic_log(ws))
    assert [c["hostname"] for c in shared.claims(owner)] == ["host-a"]  # neither claimed

    other = shared.host("host-b", "host-a", source="scans")
    other.cli("backup", "--agency", AGENCY, "--no-progress", check=True)
    log_before = restic_verbs(restic_log(other))
    for words in (["forget"], ["prune"], ["verify", "--kind", "check"]):
        result = other.cli(words[0], "--agency", AGENCY, *words[1:])
        assert result.returncode == ExitCode.MAINTENANCE_REFUSED, result.stderr
        assert "run it on host-a" in _one_error(result)
    assert restic_verbs(restic_log(other)) == log_before  # no restic started at all
    shown = json.loads(other.cli("--json", "maintenance", "show", "--agency", AGENCY,
                                 check=True).stdout)
    assert shown[0]["owner"] == "host-a" and shown[0]["maintains_here"] is False
    assert shown[0]["configured"] == "host-a" and shown[0]["rivals"] == []


def test_maintenance_moves_only_by_an_explicit_take_over(shared: Shared) -> None:
    old = shared.host("host-a", "host-a", source="docs")
    old.cli("repo", "init", check=True)
    old.cli("maintenance", "claim", "--agency", AGENCY, check=True)
    new = shared.host("host-b", "host-b")
    refused = new.cli("maintenance", "claim", "--agency", AGENCY)
    assert refused.returncode == ExitCode.MAINTENANCE_REFUSED
    assert "--take-over" in _one_error(refused)
    moved = new.cli("maintenance", "claim", "--agency", AGENCY, "--take-over", check=True)
    assert "taking over from host-a" in moved.stdout
    result = old.cli("prune", "--agency", AGENCY)
    assert result.returncode == ExitCode.MAINTENANCE_REFUSED
    assert "host 'host-b' took over its maintenance" in _one_error(result)
    new.cli("prune", "--agency", AGENCY, check=True)
    assert [c["hostname"] for c in shared.claims(old)] == ["host-a", "host-b"]


def test_two_hosts_claiming_at_once_end_with_one_owner(shared: Shared) -> None:
    x, y = shared.host("host-x", "host-x"), shared.host("host-y", "host-y")
    x.cli("repo", "init", check=True)
    started = [subprocess.Popen([*ws.cli_argv(), "maintenance", "claim", "--agency", AGENCY],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=ws.env()) for ws in (x, y)]
    done = [(p.wait(timeout=300), *p.communicate()) for p in started]
    codes = sorted(code for code, _, _ in done)
    assert codes == [0, ExitCode.MAINTENANCE_REFUSED], done
    owners = {json.loads(ws.cli("--json", "maintenance", "show", "--agency", AGENCY,
                                check=True).stdout)[0]["owner"] for ws in (x, y)}
    winner = "host-x" if done[0][0] == 0 else "host-y"
    assert owners == {winner}


# Every other malformed claim: tests/unit/jobs/test_maintenance.py (read_claim as data).
FORGERIES = [
    (["--host", "evil host"], "is not a host name"),
    (["--host", "host-a", "--tag", "claim=other"], "not exactly claim=maintenance"),
]


def test_a_forged_claim_stops_maintenance(shared: Shared) -> None:
    owner = shared.host("host-a", "host-a", source="docs")
    owner.cli("repo", "init", check=True)
    for forged, why in FORGERIES:
        tags = ["--tag", "claim=maintenance", "--tag", f"claim-agency={AGENCY}"]
        made = plain_restic(owner, shared.repos, shared.restic, "--json", "backup", *tags,
                            *forged, str(owner.root / "drbackup.toml"))
        snapshot_id = json.loads(made.stdout.splitlines()[-1])["snapshot_id"]
        result = owner.cli("forget", "--agency", AGENCY)
        assert result.returncode == ExitCode.MAINTENANCE_REFUSED, result.stderr
        line = _one_error(result)
        assert "cannot be trusted" in line and why in line and snapshot_id[:8] in line
        assert [s["id"] for s in snapshots(owner, shared.repos, shared.restic)] == [snapshot_id]
        plain_restic(owner, shared.repos, shared.restic, "forget", snapshot_id)
    assert "forget" not in restic_verbs(restic_log(owner))
