"""The MariaDB replay path (drbackup/sources/mysqlreplay.py): the DEFINER rewrite of a streamed
dump (clauses outside strings and comments, in any chunking), and the client as drbackup starts
it: its own defaults file only, local infile off, no capabilities, a minimal environment."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drbackup.config.models import MysqlSource
from drbackup.sources import mysql as my
from drbackup.sources.base import DumpError
from drbackup.sources.mysqlreplay import DefinerRewriter


def rewrite(text: str, step: int | None = None) -> str:
    sink = io.BytesIO()
    stream = DefinerRewriter(sink)
    data = text.encode()
    size = step or max(len(data), 1)
    for start in range(0, len(data), size):
        stream.write(data[start:start + size])
    stream.finish()
    return sink.getvalue().decode()


CASES = [
    ("/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n",
     "/*!50013 DEFINER=CURRENT_USER SQL SECURITY DEFINER */\n"),
    ("/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER t\n",
     "/*!50003 CREATE*/ /*!50017 DEFINER=CURRENT_USER*/ /*!50003 TRIGGER t\n"),
    ("/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT e\n",
     "/*!50106 CREATE*/ /*!50117 DEFINER=CURRENT_USER*/ /*!50106 EVENT e\n"),
    ("CREATE DEFINER=root@localhost PROCEDURE p()\n",
     "CREATE DEFINER=CURRENT_USER PROCEDURE p()\n"),
    ("CREATE definer = 'ro''ot'@'%' VIEW v AS SELECT 1;\n",
     "CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1;\n"),
    ("CREATE DEFINER\n=\n`root`@`localhost` VIEW v AS SELECT 1;\n",
     "CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1;\n"),
    ("CREATE DEFINER=`a``b`@`%` FUNCTION f() RETURNS INT RETURN 1;",
     "CREATE DEFINER=CURRENT_USER FUNCTION f() RETURNS INT RETURN 1;"),
    ("CREATE DEFINER=some_role VIEW y AS SELECT 1;\n",
     "CREATE DEFINER=CURRENT_USER VIEW y AS SELECT 1;\n"),
]
UNTOUCHED = [
    "INSERT INTO t VALUES ('DEFINER=`root`@`localhost`', \"it's DEFINER=root@x\");\n",
    "INSERT INTO t VALUES ('a\\'b DEFINER=root@x\nstill a string DEFINER=root@y');\n",
    "-- DEFINER=root@localhost\n# DEFINER=root@localhost\n/* DEFINER=root@x\n */ SELECT 1;\n",
    "SELECT `DEFINER=root@x` FROM t;\n",
    "CREATE VIEW v AS SELECT 1 /*!50013 SQL SECURITY DEFINER */;\n",
]


@pytest.mark.parametrize(("dump", "expected"), CASES)
def test_definer_clauses_become_current_user_in_any_chunking(dump: str, expected: str) -> None:
    for step in (None, 1, 2, 3, 7):
        assert rewrite(dump, step) == expected, step


@pytest.mark.parametrize("dump", UNTOUCHED)
def test_strings_identifiers_and_comments_are_left_alone(dump: str) -> None:
    for step in (None, 1, 5):
        assert rewrite(dump, step) == dump


def test_a_clause_it_cannot_parse_fails_the_replay() -> None:
    with pytest.raises(DumpError, match="DEFINER clause drbackup cannot parse"):
        rewrite("CREATE DEFINER=(SELECT 1) VIEW v AS SELECT 1;\n")


def _fake_client(tmp_path: Path) -> Path:
    """A 'client' that prints the capabilities, argv and environment it was started with."""
    script = tmp_path / "fake-mariadb"
    script.write_text("#!/bin/sh\ngrep -E '^Cap(Inh|Amb):' /proc/self/status\n"
                      "echo \"ARGV $*\"\nenv | sed 's/^/ENV /'\n")
    script.chmod(0o755)
    return script


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="raising an ambient capability needs root and setpriv")
def test_client_gets_no_capabilities_only_its_defaults_file_and_a_minimal_env(
        tmp_path: Path) -> None:
    """drbackup under the unit's ambient CAP_DAC_READ_SEARCH: the client it starts for a
    replay has none, reads drbackup's defaults file only (first), local infile off, and none of
    drbackup's environment (MYSQL_PWD, HOME and its ~/.my.cnf)."""
    client = _fake_client(tmp_path)
    source = MysqlSource.model_validate({"id": "db", "kind": "mysql", "database": "d",
                                         "client_binary": str(client)})
    config = source.model_dump_json(by_alias=True)
    probe = (
        "from drbackup.sources import mysql as my\n"
        "from drbackup.config.models import MysqlSource\n"
        f"conn = my.connect(MysqlSource.model_validate_json({config!r}))\n"
        "out = '\\n'.join(conn.query('SELECT 1;'))\n"
        "print(out.replace(conn.defaults_file, 'DEFAULTS'))\n"
        "conn.cleanup()\n")
    env = {**os.environ, "MYSQL_PWD": "leaked", "HOME": str(tmp_path)}
    done = subprocess.run(
        ["setpriv", "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--",
         sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    lines = done.stdout.splitlines()
    assert "CapInh:\t0000000000000000" in lines and "CapAmb:\t0000000000000000" in lines, lines
    assert "ARGV --defaults-file=DEFAULTS --local-infile=0 -N -B" in lines, lines
    environ = {line[4:].split("=", 1)[0] for line in lines if line.startswith("ENV ")}
    assert not environ & {"MYSQL_PWD", "HOME", "MYSQL_HOST", "MYSQL_TCP_PORT"}, environ


def test_real_client_reads_no_home_option_file(tmp_path: Path) -> None:
    """A ~/.my.cnf turning local infile back on is not read, even with HOME set."""
    (tmp_path / ".my.cnf").write_text("[client]\nlocal-infile=1\nuser=intruder\n")
    source = MysqlSource.model_validate({"id": "db", "kind": "mysql", "database": "d",
                                         "user": "backup"})
    conn = my.connect(source)
    try:
        done = subprocess.run([*conn.client_argv(), "--help"], capture_output=True,
                              text=True, env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                              check=False)
    finally:
        conn.cleanup()
    settings = dict(line.split(None, 1) for line in done.stdout.splitlines()
                    if line.startswith(("user ", "local-infile ")))
    assert settings == {"user": "backup", "local-infile": "FALSE"}, done.stdout[-2000:]
