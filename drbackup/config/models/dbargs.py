"""`dump_args` / `restore_args` of database sources: extra flags for pg_dump, pg_restore,
mariadb-dump and the mariadb client, taken from an explicit allow-list.

Only flags that change *what* is dumped or restored are allowed. Never connection flags (the
server and user come from the source's settings, the password from its password file), output
or format flags (restic reads the dump from stdout, restore-db streams it into stdin), flags
that run commands or read other option files (psql's -c, --init-command, --plugin-dir,
--defaults-file, --load-data-local-dir...), and flags that would hide a failed object
(mariadb --force). Each argument is one `--flag` or `--flag=value` (a value as its own argument
would be read as a flag here); short forms are not accepted, so nothing can hide behind a
bundle of letters. The arguments reach the tool's argv as they are, never a shell."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

# Flags without a value, and flags that need one (`--flag=value`), per tool.
_PG_DUMP_SWITCHES = frozenset({
    "--no-comments", "--no-publications", "--no-subscriptions", "--no-tablespaces",
    "--no-security-labels", "--no-toast-compression", "--no-table-access-method",
    "--no-unlogged-table-data", "--no-owner", "--no-privileges", "--no-acl",
    "--quote-all-identifiers", "--serializable-deferrable", "--load-via-partition-root",
    "--enable-row-security", "--no-large-objects", "--no-blobs", "--large-objects", "--blobs",
    "--no-sync",
})
_PG_DUMP_VALUED = frozenset({
    "--exclude-table", "--exclude-table-data", "--exclude-schema", "--table", "--schema",
    "--exclude-table-and-children", "--exclude-table-data-and-children",
    "--table-and-children", "--extension", "--exclude-extension", "--lock-wait-timeout",
})
_PG_RESTORE_SWITCHES = frozenset({
    "--no-comments", "--no-publications", "--no-subscriptions", "--no-tablespaces",
    "--no-security-labels", "--no-table-access-method", "--no-data-for-failed-tables",
    "--use-set-session-authorization", "--enable-row-security", "--disable-triggers",
    "--no-owner", "--no-privileges", "--no-acl",
})
_PG_RESTORE_VALUED: frozenset[str] = frozenset()
_MARIADB_DUMP_SWITCHES = frozenset({
    "--skip-triggers", "--skip-routines", "--skip-events", "--skip-comments",
    "--skip-extended-insert", "--complete-insert", "--insert-ignore", "--order-by-primary",
    "--no-tablespaces", "--skip-add-locks", "--skip-disable-keys", "--quick",
})
_MARIADB_DUMP_VALUED = frozenset({
    "--ignore-table", "--ignore-table-data", "--max-allowed-packet", "--net-buffer-length",
    "--column-statistics", "--set-gtid-purged",
})
_MARIADB_SWITCHES = frozenset({"--show-warnings"})
_MARIADB_VALUED = frozenset({"--max-allowed-packet", "--net-buffer-length"})

# Why a well-known flag is refused: said in the one-line error.
_CONNECTION = ("-h", "-p", "-U", "-d", "-u", "-P", "-S", "--host", "--port", "--user",
               "--username", "--dbname", "--password", "--socket", "--protocol", "--ssl",
               "--role", "--no-password", "-W", "--database", "-D")
_OUTPUT = ("-f", "-F", "--file", "--format", "-Z", "--compress", "-j", "--jobs",
           "--result-file", "--tab", "-T", "--xml", "-X", "--compact", "--no-data",
           "--no-create-info", "-t", "--list", "-l", "--use-list", "-L", "--single-transaction",
           "--exit-on-error", "--clean", "--create", "--default-character-set")
_COMMANDS = ("-c", "--command", "--init-command", "--plugin-dir", "--defaults-file",
             "--defaults-extra-file", "--defaults-group-suffix", "--no-defaults",
             "--load-data-local-dir", "--local-infile", "--pager", "--tee", "--execute",
             "-e", "--force", "--binary-mode", "--sandbox", "--snapshot", "--print-defaults",
             "--flush-logs", "--flush-privileges", "--master-data", "--dump-slave",
             "--delete-master-logs", "--lock-all-tables", "--system-command",
             "--include-foreign-data")


def _why_refused(flag: str) -> str:
    if flag == "--jobs" or flag == "-j":
        return ("restore-db streams the dump into the tool's stdin, where pg_restore cannot "
                "work in parallel, and a dump goes to restic as one stream")
    if flag in _CONNECTION:
        return "connection settings come from the source (dsn, host, port, user, password_file)"
    if flag in _OUTPUT:
        return "drbackup sets the format, output and transaction of the dump itself"
    if flag in _COMMANDS:
        return "it could run commands, read other option files or hide failures"
    return "it is not on the allow-list of flags that only change what is dumped or restored"


def _checked(args: list[str], tool: str, switches: frozenset[str],
             valued: frozenset[str]) -> list[str]:
    """`args` when each is an allowed flag; else ValueError (pydantic adds the key's path)."""
    allowed = sorted(switches | {f"{flag}=..." for flag in valued})
    for arg in args:
        flag, equals, value = arg.partition("=")
        if any(ord(c) < 32 for c in arg):
            raise ValueError(f"{arg[:60]!r} contains a control character")
        if flag in switches and not equals:
            continue
        if flag in valued and equals and value:
            continue
        if flag in valued:
            raise ValueError(f"write {flag} with its value in one argument, "
                             f"\"{flag}=VALUE\"")
        if flag in switches:
            raise ValueError(f"{flag} takes no value")
        raise ValueError(f"{flag[:60]!r} is not allowed for {tool} ({_why_refused(flag)}); "
                         f"allowed: {', '.join(allowed)}")
    return args


def _pg_dump(args: list[str]) -> list[str]:
    return _checked(args, "pg_dump", _PG_DUMP_SWITCHES, _PG_DUMP_VALUED)


def _pg_restore(args: list[str]) -> list[str]:
    return _checked(args, "pg_restore", _PG_RESTORE_SWITCHES,
                    _PG_RESTORE_VALUED)


def _mariadb_dump(args: list[str]) -> list[str]:
    return _checked(args, "mariadb-dump/mysqldump", _MARIADB_DUMP_SWITCHES,
                    _MARIADB_DUMP_VALUED)


def _mariadb(args: list[str]) -> list[str]:
    return _checked(args, "the mariadb/mysql client", _MARIADB_SWITCHES,
                    _MARIADB_VALUED)


PgDumpArgs = Annotated[list[str], AfterValidator(_pg_dump)]
PgRestoreArgs = Annotated[list[str], AfterValidator(_pg_restore)]
MariadbDumpArgs = Annotated[list[str], AfterValidator(_mariadb_dump)]
MariadbRestoreArgs = Annotated[list[str], AfterValidator(_mariadb)]
