"""Throwaway local database servers for restore drills (`drill_target = "local-instance"`).

A drill starts a private PostgreSQL or MariaDB server in a scratch directory under state_dir
(`verify.scratch.scratch_space`, flock-guarded), restores the dump there, checks it, stops the
server and removes the directory. The server:

- listens only on a unix socket inside that directory (PostgreSQL `listen_addresses=''`,
  MariaDB `--skip-networking`); the directory is mode 0700, so only its owner (and root) can
  connect;
- has no password: local trust authentication (PostgreSQL) / a root account with an empty
  password (MariaDB), reachable through that socket only. Nothing of the source's credentials
  is given to it: its processes get a minimal environment (PATH and a C locale);
- runs with durability off (fsync, full-page writes, binary log): it lives for one drill;
- gets no capabilities: drbackup's ambient CAP_DAC_READ_SEARCH (systemd unit) is dropped
  (setpriv) before the server starts, so SQL in a dump cannot read the host's files through it.

A dump is untrusted input. In PostgreSQL it is restored and checked as `drbackup_restore`, a
role without superuser (the scratch database's owner), so a trojan function in an index
expression, COPY ... PROGRAM or pg_read_file cannot run as superuser; the superuser only creates
and drops the database. In MariaDB it is restored and checked as a user named like the scratch
database (`drbackup_drill_...`@`localhost`) with all privileges on it and nothing else (no FILE,
SUPER, SET USER, PROCESS, CREATE USER, GRANT OPTION): no LOAD_FILE, INTO OUTFILE, SET GLOBAL
(general_log_file pointed at another agency's repository), GRANT, or objects defined as root
(the dump's DEFINER clauses are rewritten to CURRENT_USER). The server itself has local infile
off, an empty private `--plugin-dir` (INSTALL SONAME / INSTALL PLUGIN find nothing, so no
FEDERATED or CONNECT table reaches another server), `--secure-file-priv` an empty directory of
its own, symbolic links off (DATA DIRECTORY cannot place files elsewhere) and the event
scheduler off; its root only creates the user, grants and drops the database. The client runs in
`--sandbox` mode (no `system`, `source`, `tee` commands) with local infile off
(drbackup/sources/mysqlreplay.py).

PostgreSQL refuses to run as root. When drbackup runs as root, the instance runs as the owner
of state_dir (the service user, e.g. `drbackup`) through `setpriv`; when state_dir is owned by
root too, the drill stops with a one-line error (run drbackup as its service user, or use
`drill_target = "same-server"`). MariaDB runs as drbackup's own user (`--user=root` when root).

A drill killed while its server runs leaves the server behind: `stop_servers_under` (called by
`clean_stale_scratch` for every scratch directory nobody holds) finds the server processes whose
command line names a path inside that directory, stops them (SIGINT for PostgreSQL, SIGTERM for
MariaDB, SIGKILL after a grace period) and only then is the directory removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import drbackup.children as children
from drbackup.children import without_capabilities
from drbackup.config.models import LOCAL_INSTANCE, Config
from drbackup.errors import ConfigError, DrBackupError, ExitCode

log = logging.getLogger(__name__)

PG_LIB = Path("/usr/lib/postgresql")
PG_SUPERUSER = "drbackup"
PG_RESTORE_ROLE = "drbackup_restore"  # no superuser: what a dump runs as in the instance
PG_PORT = 5432  # only names the socket file (.s.PGSQL.5432): no TCP listener
MARIADB_SOCKET = "mariadb.sock"
MAX_SOCKET_PATH = 107  # sun_path (108 bytes) minus the terminating NUL
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
# Binaries of MariaDB are looked up on PATH, then here (a service's PATH may lack sbin).
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


class InstanceError(DrBackupError):
    """The drill's local server cannot be set up or started (not a verdict on the dump)."""

    exit_code = ExitCode.VERIFY_FAILED


@dataclass
class LocalInstance:
    """A running throwaway server: how to reach it and what it is (for the evidence)."""

    engine: str  # "postgresql" | "mariadb"
    directory: Path
    socket: Path  # PostgreSQL: the socket's directory; MariaDB: the socket file
    version: str
    bin_dir: Path | None
    run_as: str
    process: children.Process | None = None
    start_seconds: float = 0.0
    stop_signal: int = signal.SIGTERM
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.engine, "version": self.version, "run_as": self.run_as,
                "socket": str(self.socket), "start_seconds": round(self.start_seconds, 3),
                **({"bin_dir": str(self.bin_dir)} if self.bin_dir else {})}

    def stop(self) -> None:
        _stop_child(self.process, self.stop_signal)
        self.process = None


# -- finding the server programs -------------------------------------------------------------


def postgres_bin_dir(lib: Path | None = None) -> Path:
    """The newest installed PostgreSQL server's bin directory (initdb and postgres present).

    Raises ConfigError naming the package when there is none."""
    root = lib or PG_LIB
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            bin_dir = entry / "bin"
            if entry.name.isdigit() and all((bin_dir / n).is_file() for n in
                                            ("initdb", "postgres", "pg_restore", "psql")):
                found.append((int(entry.name), bin_dir))
    if not found:
        raise ConfigError(
            f"drill_target = \"local-instance\" needs a PostgreSQL server, but no "
            f"{root}/<version>/bin/initdb is installed",
            "install the postgresql package (apt-get install postgresql), or use "
            "drill_target = \"same-server\"")
    return max(found)[1]


def mariadb_programs() -> tuple[str, str, str]:
    """(mariadb-install-db, mariadbd, mariadb-admin). Raises ConfigError naming the package."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_BIN_DIRS])
    found = []
    for candidates in (("mariadb-install-db", "mysql_install_db"), ("mariadbd", "mysqld"),
                       ("mariadb-admin", "mysqladmin")):
        path = next((p for p in (shutil.which(c, path=search) for c in candidates) if p), None)
        if path is None:
            raise ConfigError(
                f"drill_target = \"local-instance\" needs the MariaDB server, but "
                f"{candidates[0]} is not installed",
                "install the mariadb-server package (apt-get install mariadb-server), or use "
                "drill_target = \"same-server\"")
        found.append(path)
    return found[0], found[1], found[2]


def missing_server_programs(config: Config) -> list[tuple[str, str]]:
    """(key path, one-line problem) for each source whose `drill_target = "local-instance"`
    cannot start its server on this host (package missing); `drbackup config check` reports
    them. Who runs PostgreSQL (root) is decided at drill time, by who runs drbackup then."""
    problems = []
    for index, agency in enumerate(config.agencies):
        for number, source in enumerate(agency.sources):
            if getattr(source, "drill_target", None) != LOCAL_INSTANCE:
                continue
            try:
                if source.kind == "mysql":
                    mariadb_programs()
                else:
                    postgres_bin_dir()
            except ConfigError as exc:
                problems.append((f"agencies[{index}].sources[{number}].drill_target",
                                 exc.one_line()))
    return problems


def _server_env() -> dict[str, str]:
    """The whole environment of a server process: no PG*/MYSQL* variables, no secrets."""
    return {"PATH": os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}


def _check_socket_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"the drill instance's unix socket path {path} is longer than {MAX_SOCKET_PATH} "
            "bytes",
            "use a shorter daemon.state_dir, or drill_target = \"same-server\"")


def _tail(path: Path, fallback: str = "") -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()
                 if ln.strip()]
    except OSError:
        lines = []
    errors = [ln for ln in lines if ("ERROR" in ln or "FATAL" in ln)
              and not ln.endswith("[ERROR] Aborting")]  # MariaDB's last line: no cause
    chosen = errors or lines
    return chosen[-1][-300:] if chosen else fallback


def _run(argv: list[str], what: str, cwd: Path, log_path: Path) -> None:
    with log_path.open("ab") as handle:
        try:
            done = children.run(argv, env=_server_env(), cwd=cwd, timeout=START_TIMEOUT,
                                log=handle)
        except (OSError, children.ChildTimeout) as exc:
            raise InstanceError(f"{what} failed: {exc}",
                                "see the drill's scratch log; check the server package") from None
    if done.returncode != 0:
        raise InstanceError(f"{what} failed (exit {done.returncode}): {_tail(log_path)}",
                            "check the server package and that state_dir is writable")


def _version(argv: list[str]) -> str:
    done = children.probe(argv, env=_server_env())
    if done is None:
        return "unknown"
    text = done.stdout.strip()
    program, _, rest = text.partition(" ")
    # "/usr/sbin/mariadbd  Ver 10.11..." -> "mariadbd  Ver 10.11..."
    return f"{os.path.basename(program)} {rest}" if program.startswith("/") else text


# -- who runs PostgreSQL ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run as this user (only when drbackup itself is root and the user is not; the
        change of user drops every capability), without capabilities otherwise."""
        if os.geteuid() != 0 or self.uid == 0:
            return without_capabilities(argv)
        groups = ["--init-groups"] if self.name and not self.name.isdigit() else [
            "--clear-groups"]
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *groups, "--", *argv]


def postgres_run_as(state_dir: Path) -> RunAs:
    """Who runs the PostgreSQL instance: drbackup's own user; when that is root, the owner of
    state_dir. Raises ConfigError when that is root as well (PostgreSQL refuses root)."""
    uid = os.geteuid()
    if uid != 0:
        return RunAs(uid, os.getegid(), _user_name(uid))
    stat = state_dir.stat()
    if stat.st_uid == 0:
        raise ConfigError(
            "PostgreSQL refuses to run as root, and state_dir is owned by root: no user to "
            "run the drill's local instance as",
            "run drbackup as its service user (the systemd unit's User=drbackup), chown "
            "state_dir to that user, or use drill_target = \"same-server\"")
    if shutil.which("setpriv") is None:
        raise ConfigError("running the drill's PostgreSQL instance as the owner of state_dir "
                          "needs setpriv", "install util-linux, or run drbackup as that user")
    return RunAs(stat.st_uid, stat.st_gid, _user_name(stat.st_uid))


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _hand_over(path: Path, run_as: RunAs) -> None:
    """Make `path` (a directory root created) the instance user's, when that is another user."""
    if os.geteuid() == 0 and run_as.uid != 0:
        os.chown(path, run_as.uid, run_as.gid)


# -- starting and stopping -------------------------------------------------------------------


def _wait_ready(process: children.Process, ping: list[str], what: str,
                log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InstanceError(f"{what} exited at start (exit {process.returncode}): "
                                f"{_tail(log_path, 'no log')}",
                                "see the log line; check the server package and state_dir")
        ready = children.probe(ping, env=_server_env())
        if ready is not None and ready.returncode == 0:
            return
        time.sleep(0.1)
    raise InstanceError(f"{what} did not become ready within {START_TIMEOUT:.0f}s",
                        "the host may be overloaded; see the drill's scratch log")


def _stop_child(process: children.Process | None, signum: int) -> None:
    children.stop(process, signum, STOP_TIMEOUT)


@contextmanager
def postgres_instance(directory: Path, state_dir: Path) -> Iterator[LocalInstance]:
    """A throwaway PostgreSQL cluster in `directory` (an empty, locked scratch directory):
    data in <directory>/data, socket <directory>/.s.PGSQL.5432; stopped on exit."""
    bin_dir = postgres_bin_dir()
    run_as = postgres_run_as(state_dir)
    _check_socket_path(directory / f".s.PGSQL.{PG_PORT}")
    started = time.monotonic()
    if directory.parent.stat().st_uid == 0:
        _hand_over(directory.parent, run_as)  # the scratch root, made by root
    _hand_over(directory, run_as)
    log_path = directory / "server.log"
    log_path.touch(mode=0o600)
    _hand_over(log_path, run_as)
    _run(run_as.wrap([str(bin_dir / "initdb"), "-D", str(directory / "data"), "-U",
                      PG_SUPERUSER, "--auth-local=trust", "--auth-host=reject", "-E", "UTF8",
                      "--locale=C", "--no-sync"]),
         "initdb of the drill's PostgreSQL instance", directory, log_path)
    instance = LocalInstance("postgresql", directory, directory,
                             _version([str(bin_dir / "postgres"), "--version"]), bin_dir,
                             run_as.name, stop_signal=signal.SIGINT)  # SIGINT: fast shutdown
    with log_path.open("ab") as handle:
        instance.process = children.start(
            run_as.wrap([str(bin_dir / "postgres"), "-D", str(directory / "data"),
                         "-k", str(directory), "-p", str(PG_PORT),
                         "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
                         "-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off", "-c", "jit=off",
                         "-c", "max_connections=20", "-c", "shared_buffers=32MB",
                         "-c", "logging_collector=off"]),
            env=_server_env(), stdout=handle, stderr="stdout", cwd=directory,
            new_session=True)
    try:
        _wait_ready(instance.process,
                    [str(bin_dir / "pg_isready"), "-q", "-h", str(directory), "-p",
                     str(PG_PORT), "-U", PG_SUPERUSER, "-d", "postgres"],
                    "the drill's PostgreSQL instance", log_path)
        _run([str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
              postgres_dsn(instance), "-c",
              f"CREATE ROLE {PG_RESTORE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
              "NOREPLICATION NOBYPASSRLS;"],
             "creating the restore role in the drill's PostgreSQL instance", directory,
             directory / "setup.log")
        instance.start_seconds = time.monotonic() - started
        yield instance
    finally:
        instance.stop()


def postgres_dsn(instance: LocalInstance, database: str = "postgres",
                 user: str = PG_SUPERUSER) -> str:
    """libpq keyword/value DSN of the instance: its socket, a role, no password."""
    host = str(instance.socket).replace("\\", "\\\\").replace("'", "\\'")
    return f"host='{host}' port={PG_PORT} user={user} dbname={database}"


@contextmanager
def mariadb_instance(directory: Path) -> Iterator[LocalInstance]:
    """A throwaway MariaDB in `directory` (an empty, locked scratch directory): data in
    <directory>/data, socket <directory>/mariadb.sock, no network; stopped on exit."""
    install_db, mariadbd, admin = mariadb_programs()
    socket_path = directory / MARIADB_SOCKET
    _check_socket_path(socket_path)
    started = time.monotonic()
    user = _user_name(os.geteuid())
    log_path = directory / "server.log"
    (directory / "tmp").mkdir(mode=0o700)
    (directory / "files").mkdir(mode=0o700)  # the only place LOAD_FILE / INTO OUTFILE reach
    (directory / "plugins").mkdir(mode=0o700)  # empty: INSTALL SONAME/PLUGIN loads nothing
    # Native AIO contexts are a host-wide quota (fs.aio-max-nr); a drill needs none. The
    # private tmpdir matters for install-db too: a MariaDB server removes every #sql* file in
    # its tmpdir when it starts, so a bootstrap sharing /tmp with another starting server
    # (another drill, the host's own) loses its temporary tables and aborts.
    _run([*without_capabilities([install_db]), "--no-defaults",
          f"--datadir={directory / 'data'}", f"--user={user}",
          "--auth-root-authentication-method=normal", "--skip-test-db",
          "--innodb-use-native-aio=0", f"--tmpdir={directory / 'tmp'}"],
         "mariadb-install-db for the drill's MariaDB instance", directory, log_path)
    instance = LocalInstance("mariadb", directory, socket_path,
                             _version([mariadbd, "--version"]), None, user)
    with log_path.open("ab") as handle:
        instance.process = children.start(
            [*without_capabilities([mariadbd]), "--no-defaults",
             f"--datadir={directory / 'data'}", f"--secure-file-priv={directory / 'files'}",
             f"--socket={socket_path}", "--skip-networking", f"--user={user}",
             f"--pid-file={directory / 'mariadbd.pid'}", f"--tmpdir={directory / 'tmp'}",
             f"--log-error={log_path}", "--skip-name-resolve", "--skip-log-bin",
             "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
             "--innodb-use-native-aio=0", "--innodb-doublewrite=0",
             "--local-infile=0", f"--plugin-dir={directory / 'plugins'}",
             "--skip-symbolic-links", "--event-scheduler=OFF"],
            env=_server_env(), stdout=handle, stderr="stdout", cwd=directory,
            new_session=True)
    try:
        _wait_ready(instance.process,
                    [admin, "--no-defaults", f"--socket={socket_path}", "-uroot", "ping"],
                    "the drill's MariaDB instance", log_path)
        instance.start_seconds = time.monotonic() - started
        yield instance
    finally:
        instance.stop()
