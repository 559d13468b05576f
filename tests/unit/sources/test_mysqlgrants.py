"""The users-and-grants snapshot (#17 item 8) is agency-controlled: only exact CREATE USER /
GRANT statements for one account are ever replayed, rebuilt from checked tokens; existing
accounts and the connecting one are never touched."""

from __future__ import annotations

import pytest

from drbackup.sources.base import DumpError
from drbackup.sources.mysqlgrants import HEADER, GrantsDumpError, parse_grants, replay_grants
from drbackup.sources.mysqlgrants_dump import dump_grants

ED = ("CREATE USER `ed`@`localhost` IDENTIFIED VIA unix_socket OR mysql_native_password "
      "USING '*B69027D44F6E5EDC07F1AEAD1477967B16F28227' REQUIRE SSL;")
REAL = (HEADER + """\
CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122';
GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122';
GRANT SELECT, INSERT ON `d1`.* TO `app`@`%`;
GRANT UPDATE (`a`, `b`) ON `d1`.`t` TO `app`@`%`;
""" + ED + """
GRANT EXECUTE ON PROCEDURE `d2`.`p` TO `ed`@`localhost`;
GRANT `reader` TO `ed`@`localhost`;
SET DEFAULT ROLE `reader` FOR `ed`@`localhost`;
CREATE USER `lim`@`10.%` PASSWORD EXPIRE INTERVAL 30 DAY ACCOUNT LOCK;
GRANT ALL PRIVILEGES ON *.* TO `lim`@`10.%` WITH GRANT OPTION MAX_QUERIES_PER_HOUR 10;
""").encode()


def test_a_real_dump_parses_into_statements_per_account() -> None:
    statements = parse_grants(REAL)
    assert [(s.verb, s.account) for s in statements][:4] == [
        ("CREATE USER", ("app", "%")), ("GRANT", ("app", "%")), ("GRANT", ("app", "%")),
        ("GRANT", ("app", "%"))]
    assert statements[3].sql == "GRANT UPDATE ( `a` , `b` ) ON `d1`.`t` TO `app`@`%`"
    assert statements[6].sql == "GRANT `reader` TO `ed`@`localhost`"
    assert statements[7].verb == "SET DEFAULT ROLE" and statements[7].account == (
        "ed", "localhost")
    assert len(statements) == 10


@pytest.mark.parametrize("statement", [
    "DROP USER `app`@`%`;",
    "SELECT 1;",
    "CREATE USER `a`@`%`; DROP DATABASE d1;",
    "CREATE USER `a`@`%`",  # no terminator: something may follow
    "CREATE OR REPLACE USER `root`@`localhost`;",
    "CREATE USER IF NOT EXISTS `a`@`%`;",
    "CREATE USER `a`@`%`, `b`@`%`;",
    "GRANT SELECT ON *.* TO `a`@`%`, `b`@`%`;",
    "GRANT SELECT ON *.* TO `a`@`%` /*!50000 , `root`@`%` */;",
    "GRANT SELECT ON *.* TO `a`@`%` # comment\n;",
    "CREATE USER `a`@`%` IDENTIFIED VIA ed25519 USING PASSWORD('x');",
    "GRANT PROXY ON `root`@`localhost` TO `a`@`%`;",
    "GRANT SELECT ON (SELECT 1) TO `a`@`%`;",
    "GRANT SELECT ON `d`.`t`.`x` TO `a`@`%`;",
    "GRANT SELECT (SLEEP(10)) ON `d`.`t` TO `a`@`%`;",
    "GRANT SELECT ON *.* TO @`a`;",
    "GRANT SELECT ON *.* TO `a`;",
    "CREATE USER `a\\`@`%`;",
    "CREATE USER 'a\\' ; DROP TABLE x; -- '@'%';",
    "CREATE USER 'a\nb'@'%';",
    "SET PASSWORD FOR `root`@`localhost` = PASSWORD('x');",
    "GRANT SELECT ON *.* TO `a`@`%`; \\! touch /tmp/pwned\n;",
    "CREATE USER `a`@`%` IDENTIFIED BY 'x' -- \n; DROP USER `b`@`%`",
    "INSTALL SONAME 'ha_connect';",
    "SET DEFAULT ROLE `r` FOR `a`@`%`, `b`@`%`;",
    "SET DEFAULT ROLE `r` FOR `a`@`%` = 1;",
    "SET PASSWORD = 'x';",
])
def test_a_crafted_snapshot_is_refused_whole(statement: str) -> None:
    dump = REAL + statement.encode()
    with pytest.raises(GrantsDumpError) as raised:
        parse_grants(dump)
    assert "nothing was replayed" in raised.value.hint


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(GrantsDumpError):
        parse_grants(b"CREATE USER `\xff`@`%`;")


def test_strings_keep_their_quoting_and_comments_are_never_sent() -> None:
    [statement] = parse_grants(b"-- a comment\nCREATE USER 'o''k'@'%' IDENTIFIED BY 'p;w';\n")
    assert statement.account == ("o'k", "%")
    assert statement.sql == "CREATE USER 'o''k'@'%' IDENTIFIED BY 'p;w'"


def test_replay_creates_missing_accounts_only_and_drops_failed_ones() -> None:
    statements = parse_grants(REAL + b"GRANT SELECT ON *.* TO `ghost`@`%`;\n"
                              b"CREATE USER `drbackup`@`%`;\nCREATE USER `App`@`%`;\n")
    ran: list[str] = []
    dropped: list[tuple[str, str]] = []

    def run(sql: str) -> None:
        ran.append(sql)
        if "`lim`" in sql:
            raise DumpError("ERROR 1064: plugin missing")

    done = replay_grants(statements, existing={("ed", "LOCALHOST")}, me=("drbackup", "%"),
                         run=run, drop=dropped.append)
    assert done.created == ["app@%", "App@%"]
    assert sorted(done.existing) == ["drbackup@%", "ed@localhost"]
    assert done.orphans == ["ghost@%"] and dropped == [("lim", "10.%")]
    assert done.failed[0].startswith("lim@10.% (ERROR 1064")
    assert ran[0].startswith("CREATE USER `app`@`%`") and ran[0].count(";\n") == 4
    assert not any("`ed`" in sql or "`ghost`" in sql or "drbackup" in sql for sql in ran)


def test_the_dump_leaves_out_system_accounts_roles_and_proxy_grants() -> None:
    asked: list[str] = []

    def query(sql: str) -> list[str]:
        asked.append(sql)
        if sql.startswith("SELECT user"):
            return ["app\t%", "o'k\tlocal\\thost"]
        return ["CREATE USER `app`@`%`", "GRANT PROXY ON ''@'%' TO `app`@`%`",
                "GRANT USAGE ON *.* TO `app`@`%`"]

    text = dump_grants(query, mysql=False)
    assert "'root'" in asked[0] and "'mariadb.sys'" in asked[0] and "is_role" in asked[0]
    assert "SHOW GRANTS FOR 'o''k'@'local\thost'" in asked[1]
    assert text == HEADER + "CREATE USER `app`@`%`;\nGRANT USAGE ON *.* TO `app`@`%`;\n"
    assert [s.verb for s in parse_grants(text.encode())] == ["CREATE USER", "GRANT"]
