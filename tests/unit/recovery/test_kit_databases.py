"""The recovery kit carries the database sources' connection settings (no password) and the
[[restore_targets]] with their passwords (#17 item 7): the config a kit opens into validates
and names them, so `restore-db --target NAME` works on a host that has only the kit; entries
that do not validate are refused."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import tomli_w

from drbackup.config.loader import parse_config
from drbackup.config.models import MysqlSource, PostgresSource, SqliteSource
from drbackup.recovery.kit import build_payload
from drbackup.recovery.kit_databases import restore_target_secrets
from drbackup.recovery.render import render_config
from drbackup.recovery.sealing import RecoveryKitError


def _secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def config(tmp_path: Path) -> str:
    return tomli_w.dumps({
        "daemon": {"state_dir": str(tmp_path / "state")},
        "agencies": [{"id": "records", "password_file": str(_secret(tmp_path / "r.pw", "rp\n")),
                      "sources": [
            {"id": "permits", "kind": "postgres", "dsn": "postgresql://backup@db-a/permits",
             "password_file": str(_secret(tmp_path / "a.pw", "source-secret\n")),
             "dump_args": ["--no-comments"], "restore_args": ["--no-tablespaces"]},
            {"id": "licences", "kind": "mysql", "database": "licences", "host": "db-m",
             "user": "backup"},
            {"id": "server", "kind": "mysql", "all": True, "exclude_databases": ["scratch"],
             "host": "db-m", "user": "backup"},
            {"id": "registry", "kind": "sqlite", "path": "/srv/registry/registry.sqlite"}]}],
        "restore_targets": [
            {"name": "standby", "kind": "postgres", "host": "db-b", "user": "restore",
             "password_file": str(_secret(tmp_path / "b.pw", "target-secret\n"))},
            {"name": "standby-my", "kind": "mysql", "host": "db-n", "port": 3307,
             "user": "restore"}]})


def test_the_opened_kit_config_holds_the_db_sources_and_targets(tmp_path: Path) -> None:
    source_config = parse_config(config(tmp_path), tmp_path / "c.toml")
    payload = build_payload(source_config, source_config.agencies, include_s3_credentials=False,
                            created="2026-12-07T12:00:00Z")
    assert "source-secret" not in str(payload)  # the source's password stays on its host
    out = tmp_path / "opened"
    text, missing = render_config(payload, out)
    assert missing == []
    assert restore_target_secrets(payload) == {"standby.password": "target-secret\n"}
    (out / "db-passwords").mkdir(parents=True)
    _secret(out / "db-passwords" / "standby.password", "target-secret\n")
    _secret(out / "passwords-records", "rp\n")
    opened = parse_config(text.replace(str(out / "passwords" / "records.password"),
                                       str(out / "passwords-records")), out / "drbackup.toml")
    [agency] = opened.agencies
    pg, my = agency.source("permits"), agency.source("licences")
    assert isinstance(pg, PostgresSource) and pg.dsn == "postgresql://backup@db-a/permits"
    assert pg.password_file is None
    assert (pg.dump_args, pg.restore_args) == (["--no-comments"], ["--no-tablespaces"])
    assert isinstance(my, MysqlSource) and (my.host, my.database) == ("db-m", "licences")
    # #17 items 8, 10: a whole MariaDB server (all = true) and a SQLite file come back with
    # restore-db --all-databases --target / --into on the fresh host.
    server, registry = agency.source("server"), agency.source("registry")
    assert isinstance(server, MysqlSource) and server.all and server.database is None
    assert server.exclude_databases == ["scratch"] and server.globals
    assert isinstance(registry, SqliteSource)
    assert str(registry.path) == "/srv/registry/registry.sqlite"
    standby = opened.restore_target("standby")
    assert standby.password_file == out / "db-passwords" / "standby.password"
    assert opened.restore_target("standby-my").describe() == "restore@db-n:3307"


@pytest.mark.parametrize("damage", [
    lambda p: p["restore_targets"][0].update(kind="oracle"),
    lambda p: p["restore_targets"][0].update(name="../../etc"),
    lambda p: p["restore_targets"][0].update(password="a\nb"),
    lambda p: p["agencies"][0]["sources"][0].update(dsn="postgresql://u:pw@db/x"),
    lambda p: p["agencies"][0]["sources"][0].update(restore_args=["--dbname=other"]),
    lambda p: p["agencies"][0]["sources"][2].update(all=False),  # neither database nor all
    lambda p: p["agencies"][0]["sources"][3].update(path="relative/x.sqlite"),
])
def test_a_kit_entry_that_does_not_validate_is_refused(tmp_path: Path, damage: object) -> None:
    source_config = parse_config(config(tmp_path), tmp_path / "c.toml")
    payload = copy.deepcopy(build_payload(source_config, source_config.agencies,
                                          include_s3_credentials=False, created="x"))
    damage(payload)  # type: ignore[operator]
    with pytest.raises(RecoveryKitError):
        render_config(payload, tmp_path / "opened")
