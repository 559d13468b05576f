"""The users-and-grants dump of a MariaDB/MySQL server (#17 item 8), run by the dump guard as
`python -m drbackup.sources.mysqlgrants_dump --defaults-file F --client BIN`: HEADER, then
`SHOW CREATE USER` and `SHOW GRANTS FOR` every account but root, the system accounts and roles,
one statement a line. drbackup/sources/mysqlgrants.py reads it back, checked."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence

from drbackup.sources.base import DumpError
from drbackup.sources.mysqlgrants import HEADER, SYSTEM_USERS, quote, unescape_batch


def dump_grants(query: Callable[[str], list[str]], *, mysql: bool) -> str:
    """The dump: HEADER, then each non-system account's SHOW CREATE USER and SHOW GRANTS rows,
    one statement each ending in ';' (PROXY grants left out: a replay refuses them). Raises
    DumpError when the server cannot be asked."""
    excluded = ", ".join(quote(user) for user in SYSTEM_USERS)
    listing = f"SELECT user, host FROM mysql.user WHERE user NOT IN ({excluded})"  # noqa: S608
    try:
        rows = query(listing + " AND is_role <> 'Y' ORDER BY user, host;")
    except DumpError:
        rows = query(listing + " ORDER BY user, host;")  # MySQL: no is_role column
    accounts = [tuple(unescape_batch(v) for v in row.split("\t")) for row in rows]
    out = [HEADER]
    if accounts:
        shows = "".join(f"SHOW CREATE USER {quote(a[0])}@{quote(a[1])}; "
                        f"SHOW GRANTS FOR {quote(a[0])}@{quote(a[1])};\n"
                        for a in accounts if len(a) == 2)
        prefix = "SET SESSION print_identified_with_as_hex = ON;\n" if mysql else ""
        for row in query(prefix + shows):
            statement = unescape_batch(row)
            if re.match(r"GRANT\s+PROXY\b", statement, re.IGNORECASE):
                continue
            out.append(statement + ";\n")
    return "".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m drbackup.sources.mysqlgrants_dump --defaults-file F --client BIN`: the dump on
    stdout, a failure's cause on stderr (exit 1)."""
    from drbackup.sources.dumps import last_line, run_tool
    from drbackup.sources.mysqlreplay import client_argv, client_env

    parser = argparse.ArgumentParser(prog="drbackup.sources.mysqlgrants_dump")
    parser.add_argument("--defaults-file", required=True)
    parser.add_argument("--client", required=True)
    args = parser.parse_args(argv)

    def query(sql: str) -> list[str]:
        done = run_tool(client_argv(args.client, args.defaults_file, "-N", "-B",
                                    "--default-character-set=utf8mb4"),
                        client_env(), input_text=sql)
        if done.returncode != 0:
            raise DumpError(last_line(done.stderr_tail))
        return [line for line in done.stdout.splitlines() if line.strip()]

    try:
        version = query("SELECT VERSION();")
        text = dump_grants(query, mysql=not any("mariadb" in v.lower() for v in version))
    except DumpError as exc:
        print(f"users and grants: {exc.message}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover - the dump guard runs it
    sys.exit(main())
