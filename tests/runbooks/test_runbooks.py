"""Runbooks are tested: their executable blocks run, in order, against a real repository in the
real S3 server; the full-recovery runbooks run on a "fresh host" (new HOME, no config, no state,
only the identity key and the kit — the .kit file, or just the printout's scanned pages) and must
restore the agency's latest snapshot byte-identical. zh-CN and en must hold the same commands."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drbackup.cli.main import build_parser, main
from drbackup.config import load_config
from drbackup.jobs.runtime import Runtime
from tests.runbooks.markdown import (
    LANGUAGES,
    RUNBOOKS,
    Block,
    as_pattern,
    blocks,
    checkable,
    relative,
    runbook_files,
)
from tests.support.dbcheck import permits_rows, permits_sqlite
from tests.support.kits import printed_signer
from tests.support.servers import DB_TEST_USER, TEST_SECRET_KEY, MariaDBServer, MotoServer
from tests.support.trees import make_mixed_tree, manifest, office_tree
from tests.support.workspace import Workspace

ALERTS = ["DrBackupRPOBreached", "DrBackupBackupsFailing", "DrBackupVerifyFailed",
          "DrBackupVerifyOverdue", "DrBackupRTOEstimateOverTarget", "DrBackupReplicationLagHigh",
          "DrBackupStoreDown", "DrBackupWatcherOverflow", "DrBackupDaemonAbsent",
          "DrBackupDiskFilling", "DrBackupRansomwareSuspected", "DrBackupOfflineCopyTooOld"]
REQUIRED = ["restore-files.md", "restore-database.md", "full-recovery-from-kit.md",
            "full-recovery-from-printed-kit.md", "primary-store-unreachable.md",
            "restic-without-drbackup.md",
            "restore-drill-failed.md", "ransomware-suspected.md",
            "lost-repository-password.md", *[f"alerts/{name}.md" for name in ALERTS],
            # offline media (#19 §6): executed in test_media_runbooks.py, a world of their own
            "rotate-offline-media.md", "carry-into-internal-network.md",
            "restore-from-offline-medium.md"]
SECTIONS = {
    "en": ["## When to use it", "## Is this real?", "## Prerequisites", "## Steps",
           "## Verification", "## Escalation", "Owner:", "Last verified: 20"],
    "zh-CN": ["## 何时使用", "## 确认是否真实", "## 前提条件", "## 步骤", "## 验证", "## 升级",
              "负责人：", "最后验证：20"],
}
AGENCY, SOURCE, REPLICA, DB_SOURCE = "planning", "documents", "offsite", "permits-db"
# #17 item 10: a whole MariaDB server (all = true) and the standby it is restored onto.
SERVER_DB_SOURCE, DB_TARGET = "records-db", "standby"
SYSTEM_DATABASES = {"information_schema", "performance_schema", "sys", "mysql"}
RULES_FILE = Path(__file__).resolve().parents[2] / "config" / "prometheus" / "drbackup-rules.yml"


def _verbs() -> set[str]:
    parser = build_parser()
    for action in parser._actions:  # argparse keeps subparsers here
        choices = getattr(action, "choices", None)
        if isinstance(choices, dict):
            return set(choices)
    raise AssertionError("no subcommands")


# -- static checks ----------------------------------------------------------------------------


def test_every_runbook_exists_in_both_languages_with_its_sections() -> None:
    names = {lang: {relative(p, lang) for p in runbook_files(lang)} for lang in LANGUAGES}
    assert names["en"] == names["zh-CN"]
    assert set(REQUIRED) <= names["en"]
    for lang in LANGUAGES:
        for name in names[lang]:
            text = (RUNBOOKS / lang / name).read_text(encoding="utf-8")
            missing = [s for s in SECTIONS[lang] if s not in text]
            assert not missing, f"{lang}/{name} lacks {missing}"
            assert re.search(r"^ *1\. ", text, re.M), f"{lang}/{name} has no numbered steps"
            assert any(b.executable for b in blocks(RUNBOOKS / lang / name)), (
                f"{lang}/{name} has no executable block")


@pytest.mark.parametrize("name", REQUIRED)
def test_zh_cn_has_the_same_commands_as_en(name: str) -> None:
    en = blocks(RUNBOOKS / "en" / name)
    zh = blocks(RUNBOOKS / "zh-CN" / name)
    assert [b.commands() for b in zh] == [b.commands() for b in en]
    assert [(b.executable, b.untested, b.requires) for b in zh] == [
        (b.executable, b.untested, b.requires) for b in en]


def test_runbook_commands_use_verbs_that_exist() -> None:
    verbs = _verbs()
    for lang in LANGUAGES:
        for path in runbook_files(lang):
            for block in blocks(path):
                if block.untested or (block.requires and block.requires not in verbs):
                    continue
                for command in block.commands():
                    for verb in re.findall(r"(?:^|[\s;|&(])drbackup\s+(?:--\S+\s+)*([a-z][a-z-]*)",
                                           command):
                        assert verb in verbs, f"{path}:{block.line}: unknown verb {verb!r}"


def test_alert_runbooks_match_the_alert_rules() -> None:
    for name in ALERTS:
        assert (RUNBOOKS / "en" / "alerts" / f"{name}.md").is_file()
    if not RULES_FILE.exists():
        return  # the rules come with the observability work; checked once they are there
    text = RULES_FILE.read_text(encoding="utf-8")
    assert set(re.findall(r"^\s*-?\s*alert:\s*(\w+)", text, re.M)) == set(ALERTS)
    for url in re.findall(r"runbook_url:\s*['\"]?(\S+?)['\"]?\s*$", text, re.M):
        match = re.fullmatch(r"https://drbackup\.example\.gov/runbooks/(.+)", url)
        assert match, url
        assert (RUNBOOKS / match.group(1)).is_file(), f"{url} has no runbook"


# -- executing them ---------------------------------------------------------------------------


@dataclass
class Sandbox:
    root: Path
    workspace: Workspace
    data: Path
    kit: Path
    pdf: Path  # the same kit, printable: instructions, QR codes, armored text
    identity: Path
    password_file: Path
    counter: list[int] = field(default_factory=lambda: [0])

    def fresh_dir(self, name: str) -> Path:
        self.counter[0] += 1
        path = self.root / f"{name}-{self.counter[0]}"
        path.mkdir()
        return path

    def scans(self) -> Path:
        """The printout's pages as a flatbed scanner gives them: every page of the PDF as a PNG
        (those without a code too). Rendered on first use, so only the worker that runs the
        printed-kit runbook pays for it."""
        scans = self.root / "scans"
        if not scans.is_dir():
            for tool in ("pdftoppm", "zbarimg"):  # a failure, not a skip: CI must read paper
                assert shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs it"
            rendering = self.root / "scans.tmp"
            rendering.mkdir()
            subprocess.run(["pdftoppm", "-r", "150", "-png", str(self.pdf),
                            str(rendering / "page")], check=True, capture_output=True)
            rendering.rename(scans)
        return scans


def _cli(ws: Workspace, *args: str) -> None:
    """Sandbox set-up through the CLI, in-process (the runbooks themselves run as subprocesses)."""
    ws.write()
    assert main(["--config", str(ws.config_path), *args]) == 0, args


def _server_databases(server: MariaDBServer, suffix: str) -> tuple[tuple[str, ...], str]:
    """Two small databases (a table with Chinese text, a view, a trigger, a procedure; another
    character set) and an account with grants on them, on the shared MariaDB server."""
    licences, permits = f"rb_licences_{suffix}", f"rb_permits_{suffix}"
    account = f"'rb_clerk_{suffix}'@'%'"
    server.sql(f"CREATE DATABASE `{licences}`; CREATE DATABASE `{permits}` CHARACTER SET utf8mb4 "
               "COLLATE utf8mb4_unicode_ci;")
    server.sql("CREATE TABLE licences (id INT PRIMARY KEY, holder VARCHAR(32)) CHARSET utf8mb4; "
               "CREATE TABLE audit (id INT); CREATE TRIGGER audited AFTER INSERT ON licences "
               "FOR EACH ROW INSERT INTO audit VALUES (NEW.id); INSERT INTO licences VALUES "
               "(1, '张三'), (2, '李四'); CREATE VIEW holders AS SELECT holder FROM licences; "
               "CREATE PROCEDURE renew() UPDATE licences SET holder = holder;", licences)
    server.sql("CREATE TABLE permits (id INT PRIMARY KEY, kind VARCHAR(16)); "
               "INSERT INTO permits VALUES (1, 'shop'), (2, 'taxi');", permits)
    server.sql(f"CREATE USER {account} IDENTIFIED BY 'clerk-{suffix}'; "
               f"GRANT SELECT, INSERT ON `{licences}`.* TO {account}; "
               f"GRANT SELECT ON `{permits}`.permits TO {account};")
    return (licences, permits), account


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer,
            restic_binary: str) -> Iterator[Sandbox]:
    root = tmp_path_factory.mktemp("runbooks")
    ws = Workspace(root / "ws")
    ws.config["daemon"]["restic"] = restic_binary
    data = root / "agency-data"
    make_mixed_tree(data, big_bytes=2 * 1024 * 1024, small_files=40)
    (data / "report-2026.docx").write_bytes(os.urandom(4096))
    suffix = uuid.uuid4().hex[:10]
    ws.add_s3_store("primary", s3_server, f"rb-primary-{suffix}")
    ws.add_s3_store(REPLICA, s3_server, f"rb-offsite-{suffix}")
    ws.add_agency(AGENCY, store="primary", replicas=[REPLICA])
    ws.add_directory_source(AGENCY, SOURCE, [data])
    database = permits_sqlite(root / "permits.sqlite", 500)
    ws.agency(AGENCY)["sources"].append({"id": DB_SOURCE, "kind": "sqlite",
                                         "path": str(database)})
    _cli(ws, "repo", "init", "--store", "primary")
    _cli(ws, "backup", "--agency", AGENCY)
    _populate_replica(ws)
    keys = root / "keys"
    _cli(ws, "recovery-kit", "keygen", "--out", str(keys / "identity"))
    kits = root / "kits"
    _cli(ws, "recovery-kit", "create", "--recipient", str(keys / "identity.pub"),
         "--include-s3-credentials", "--pdf", "--out", str(kits))
    yield Sandbox(root, ws, data, kits / "drbackup-recovery-kit-all.kit",
                  kits / "drbackup-recovery-kit-all.pdf", keys / "identity",
                  Path(ws.agency(AGENCY)["password_file"]))


def _populate_replica(ws: Workspace) -> None:
    if "replicate" in _verbs():
        _cli(ws, "replicate", "--agency", AGENCY)
        return
    ws.write()
    rt = Runtime.create(load_config(ws.config_path))
    try:
        agency = rt.config.agency(AGENCY)
        s3 = rt.s3_store(REPLICA)
        assert s3 is not None
        s3.ensure_bucket(create=True)
        primary, replica = rt.target(agency, "primary"), rt.target(agency, REPLICA)
        rt.restic.init(replica, copy_chunker_params_from=primary)
        rt.restic.copy(primary, replica)
    finally:
        rt.close()


def _script(path: Path) -> str:
    parts = ["set -euo pipefail", "exec 2>&1  # each block's output in order, for the checks"]
    verbs = _verbs()
    for index, block in enumerate(b for b in blocks(path) if b.runs_with(verbs)):
        parts.append(f"echo '>>> runbook block {index + 1} (line {block.line})'")
        parts.append(block.code)
    return "\n".join(parts) + "\n"


def _unmet_expectations(path: Path, output: str) -> list[str]:
    """#21: what the runbook says a block prints must be what it printed (each checkable
    fragment of its "Expected:" sentence, with placeholders, found in that block's output)."""
    verbs = _verbs()
    ran = [b for b in blocks(path) if b.runs_with(verbs)]
    pieces = re.split(r"^>>> runbook block \d+ \(line \d+\)$", output, flags=re.M)[1:]
    unmet = []
    for block, printed in zip(ran, pieces, strict=False):
        for fragment in block.expected:
            if checkable(fragment, verbs) and not as_pattern(fragment).search(printed):
                unmet.append(f"{path.name}:{block.line}: expected `{fragment}`, printed:\n"
                             f"{printed.strip()[:600]}")
    return unmet


def execute(path: Path, work: Path, env: dict[str, str]) -> tuple[str, str]:
    """Run the runbook's executable blocks as one bash script in `work`; assert it exits 0 and
    prints what its "Expected:" sentences say. (stdout, stdout and stderr for messages)."""
    script = work / "runbook.sh"
    script.write_text(_script(path))
    result = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, (f"runbook {path.name} failed (exit {result.returncode})"
                                    f"\n{output}")
    unmet = _unmet_expectations(path, result.stdout)
    assert not unmet, "\n".join(unmet)
    return result.stdout, output


def _bring_kit_file(sandbox: Sandbox, host: Path) -> dict[str, str]:
    """The .kit file (from a USB stick, or downloaded from a store's _recovery-kit/)."""
    shutil.copy(sandbox.kit, host / "kit.kit")
    return {"KIT": str(host / "kit.kit")}


def _bring_scanned_printout(sandbox: Sandbox, host: Path) -> dict[str, str]:
    """Only the paper, scanned: page images; no .kit file, no PDF."""
    shutil.copytree(sandbox.scans(), host / "scans")
    return {"SCANS": str(host / "scans")}


# Runbooks for a new machine, and what the emergency team brings to it besides the identity key.
# They run with a new HOME and nothing of the sandbox's config, state or passwords.
def _bring_opened_kit_and_restic_only(sandbox: Sandbox, host: Path) -> dict[str, str]:
    """The kit opened on another machine (the emergency laptop with drbackup) and copied here;
    on this host PATH has restic and the system's tools, not drbackup."""
    opened = host / "opened-kit"
    assert main(["recovery-kit", "open", "--identity", str(sandbox.identity), "--kit",
                 str(sandbox.kit), "--out", str(opened), "--signer-fingerprint",
                 printed_signer(sandbox.kit.with_suffix(".txt"))]) == 0
    restic = shutil.which("restic")
    assert restic is not None
    return {"RECOVERY_DIR": str(opened), "STORE": "primary", "SCRATCH": str(host / "db"),
            "PATH": f"{Path(restic).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"}


FRESH_HOST: dict[str, Callable[[Sandbox, Path], dict[str, str]]] = {
    "full-recovery-from-kit.md": _bring_kit_file,
    "full-recovery-from-printed-kit.md": _bring_scanned_printout,
    "restic-without-drbackup.md": _bring_opened_kit_and_restic_only,
}


def _run(sandbox: Sandbox, name: str) -> tuple[Path, str]:
    """Run the runbook's executable blocks; on a fresh host if it is one of FRESH_HOST."""
    path = RUNBOOKS / "en" / name
    work = sandbox.fresh_dir("work")
    home = sandbox.fresh_dir("home")
    target = work / "restore-target"
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(home), "LANG": "C.UTF-8", "AGENCY": AGENCY, "SOURCE": SOURCE,
           "REPLICA": REPLICA, "FILE_PATTERN": "*.docx", "TARGET": str(target),
           "SCRATCH": str(work / "scratch"), "RECOVERY_DIR": str(work / "recovery"),
           "DB_SOURCE": DB_SOURCE, "NEW_DB": str(work / "permits-restored.sqlite"),
           "SERVER_DB_SOURCE": SERVER_DB_SOURCE, "DB_TARGET": DB_TARGET}
    for passed in ("TMPDIR", "PYTHONPATH"):  # PYTHONPATH: a worktree runs its own code
        if passed in os.environ:
            env[passed] = os.environ[passed]
    # The paper kit comes to every opening: the team types the signer's fingerprint printed on it.
    env["SIGNER_FINGERPRINT"] = printed_signer(sandbox.kit.with_suffix(".txt"))
    bring = FRESH_HOST.get(name)
    if bring is not None:
        # Only the identity key and the kit (in whichever form) come to the new machine.
        shutil.copy(sandbox.identity, work / "identity")
        env.update(IDENTITY=str(work / "identity"), **bring(sandbox, work))
    else:
        env.update(KIT=str(sandbox.kit), IDENTITY=str(sandbox.identity),
                   DRBACKUP_CONFIG=str(sandbox.workspace.config_path),
                   PASSWORD_FILE=str(sandbox.password_file),
                   STATE_DIR=str(sandbox.workspace.state_dir))
    return target, execute(path, work, env)[1]


def _executable_runbooks() -> list[str]:
    return [relative(p, "en") for p in runbook_files("en")
            if any(b.executable for b in blocks(p))]


# Runbooks that need a world of their own (an attack already happened).
OWN_WORLD = {"ransomware-suspected.md", "rotate-offline-media.md",
             "carry-into-internal-network.md", "restore-from-offline-medium.md"}


@pytest.mark.parametrize("name", [n for n in _executable_runbooks() if n not in FRESH_HOST
                                  and n not in OWN_WORLD
                                  and n != "lost-repository-password.md"])
def test_runbook_steps_work(sandbox: Sandbox, name: str) -> None:
    target, _ = _run(sandbox, name)
    if name in ("restore-files.md", "primary-store-unreachable.md"):
        assert manifest(target / sandbox.data.relative_to("/")) == manifest(sandbox.data)
    if name == "restore-database.md":
        assert permits_rows(target.parent / "permits-restored.sqlite") == (500, "holder 99")


def test_lost_password_runbook_puts_the_password_back(sandbox: Sandbox) -> None:
    original = sandbox.password_file.read_bytes()
    sandbox.password_file.unlink()
    _run(sandbox, "lost-repository-password.md")
    assert sandbox.password_file.read_bytes() == original
    assert sandbox.password_file.stat().st_mode & 0o777 == 0o600


def _mariadb_state(server: MariaDBServer, databases: tuple[str, ...], account: str
                   ) -> dict[str, str]:
    state = {"grants": server.query(f"SHOW GRANTS FOR {account}")}
    for name in databases:
        state[name] = subprocess.run(
            ["mariadb-dump", f"--defaults-extra-file={server.defaults_file()}",
             "--skip-dump-date", "--routines", "--events", "--triggers", "--", name],
            capture_output=True, text=True, check=True).stdout
        state[f"{name} charset"] = server.query(f"SHOW CREATE DATABASE `{name}`")
    return state


def _with_server_source(sandbox: Sandbox, server: MariaDBServer
                        ) -> tuple[Sandbox, tuple[str, ...], str]:
    """The sandbox's agency with a whole MariaDB server as one more source (all = true) and the
    standby it is restored onto as a [[restore_targets]] entry, backed up, and a kit made of
    that: only this runbook pays for the server. The standby is the same server, emptied of
    the source's databases and account before the runbook (rebuilt empty after the
    disaster). The shared workspace's config is left as it was."""
    ws = sandbox.workspace
    others = sorted(set(server.query("SELECT schema_name FROM information_schema.schemata"
                                     ).split()) - SYSTEM_DATABASES)
    databases, account = _server_databases(server, uuid.uuid4().hex[:10])
    password = str(ws.secret_file(f"mariadb-{uuid.uuid4().hex[:6]}.password",
                                  server.password + "\n"))
    source = {"id": SERVER_DB_SOURCE, "kind": "mysql", "all": True,
              "exclude_databases": others, "host": "127.0.0.1", "port": server.port,
              "user": DB_TEST_USER, "password_file": password}
    ws.agency(AGENCY)["sources"].append(source)
    ws.config["restore_targets"] = [{"name": DB_TARGET, "kind": "mysql", "host": "127.0.0.1",
                                     "port": server.port, "user": DB_TEST_USER,
                                     "password_file": password}]
    kits = sandbox.fresh_dir("kits")
    try:
        _cli(ws, "backup", "--agency", AGENCY, "--source", SERVER_DB_SOURCE)
        _cli(ws, "recovery-kit", "create", "--recipient", str(sandbox.identity) + ".pub",
             "--include-s3-credentials", "--out", str(kits))
    finally:
        ws.agency(AGENCY)["sources"].remove(source)
        del ws.config["restore_targets"]
        ws.write()
    kit = dataclasses.replace(sandbox, kit=kits / "drbackup-recovery-kit-all.kit",
                              counter=sandbox.counter)
    return kit, databases, account


def test_full_recovery_on_a_fresh_host_is_byte_identical(
        sandbox: Sandbox, mariadb_server: MariaDBServer) -> None:
    """#17 item 10: the databases come back with drbackup commands from the kit alone: a
    whole MariaDB server (its databases, users and grants) onto the standby, emptied first,
    and the SQLite file."""
    server = mariadb_server
    sandbox, databases, account = _with_server_source(sandbox, server)
    want = _mariadb_state(server, databases, account)
    server.drop(databases, [account])
    try:
        target, output = _run(sandbox, "full-recovery-from-kit.md")
        assert _mariadb_state(server, databases, account) == want
    finally:  # the server is shared by the worker's later tests (one dumps it whole)
        server.drop(databases, [account])
    assert manifest(target / sandbox.data.relative_to("/")) == manifest(sandbox.data)
    assert sandbox.workspace.passwords[AGENCY] not in output
    assert server.password not in output
    assert "restored 3 of 3 database(s)" in output
    assert permits_rows(target.parent / "permits-restored.sqlite") == (500, "holder 99")


def test_full_recovery_from_the_printed_kit_alone_is_byte_identical(sandbox: Sandbox) -> None:
    """Paper to bytes: the fresh host has the scanned pages and the identity key, nothing else."""
    target, output = _run(sandbox, "full-recovery-from-printed-kit.md")
    assert manifest(target / sandbox.data.relative_to("/")) == manifest(sandbox.data)
    assert sandbox.workspace.passwords[AGENCY] not in output
    assert TEST_SECRET_KEY not in output  # the kit carries the S3 keys too
    # The kit spans several codes and the runbook's count showed each part once ...
    counted = re.findall(r"^\s*1 (\d+)/(\d+)$", output, re.M)
    total = int(counted[0][1])
    assert total >= 2 and counted == [(str(i), str(total)) for i in range(1, total + 1)]
    # ... and the scan went through the page without a code (zbarimg's exit 4, accepted).
    first = min(sandbox.scans().iterdir())
    assert subprocess.run(["zbarimg", "--raw", "-q", str(first)], capture_output=True,
                          check=False).returncode == 4


def test_plain_restic_break_glass_restores_byte_identical(sandbox: Sandbox) -> None:
    """#21: the day drbackup cannot run: the opened kit and restic alone bring the files and
    the database copy back, byte-identical, and drbackup was not on the host's PATH."""
    target, output = _run(sandbox, "restic-without-drbackup.md")
    assert "drbackup is not available on this host" in output
    assert manifest(target / sandbox.data.relative_to("/")) == manifest(sandbox.data)
    restored_db = next(target.parent.glob("**/db/permits.sqlite"))
    assert permits_rows(restored_db) == (500, "holder 99")
    assert sandbox.workspace.passwords[AGENCY] not in output
    assert TEST_SECRET_KEY not in output


def test_expected_output_is_matched_with_placeholders(tmp_path: Path) -> None:
    """The "Expected:" check (#21 §3): placeholders, numbers and units match what varies; the
    words must be there; prose fragments (a word, a $VARIABLE path, a command) are not checked."""
    pattern = as_pattern("restored N files/dirs, X GiB from snapshot <id> into <TARGET> in S s, "
                         "0 error(s)")
    assert pattern.search("restored 62 files/dirs, 2.0 MiB from snapshot 6ad69ad9 into /t/x in "
                          "0.7s, 0 error(s)")
    assert not pattern.search("restored 62 files/dirs, 2.0 MiB from snapshot 6ad69ad9 into /t/x "
                              "in 0.7s, 3 error(s)")
    assert not checkable("ls") and not checkable("$TARGET/<original path>")
    assert not checkable("drbackup report", {"report"}) and checkable("N snapshot(s)")
    book = tmp_path / "book.md"
    book.write_text("1. Do it:\n\n   ```bash\n   # runbook-test\n   true\n   ```\n\n"
                    "   Expected: `done in N s` and `ok`. Exit 3: `not this`.\n")
    [block] = blocks(book)
    assert block.expected == ("done in N s", "ok")


def test_blocks_parse() -> None:
    block = Block("# runbook-test\nfoo  # comment\n# only comment\n\nbar", True, False, 1)
    assert block.commands() == ["foo", "bar"]


def test_executable_blocks_do_not_pipe_into_head() -> None:
    """Under pipefail, `cmd | head` fails at random when head exits before cmd is done."""
    for path in runbook_files("en"):
        for block in blocks(path):
            if block.executable or block.requires:
                assert not re.search(r"\|\s*head\b", block.code), f"{path}:{block.line}"


def test_ransomware_runbook_restores_the_last_clean_tree_and_releases(
        tmp_path: Path, restic_binary: str) -> None:
    """#16: an attack happened (files encrypted in place, a ransom note); the runbook finds the
    freeze, restores the last clean snapshot byte-identical and, at the end, releases."""
    ws = Workspace(tmp_path / "ws")
    ws.config["daemon"]["restic"] = restic_binary
    ws.config["stores"]["local"] = {"path": str(tmp_path / "store")}
    data = tmp_path / "agency-data"
    office_tree(data, files=60)
    ws.add_agency(AGENCY)
    ws.add_directory_source(AGENCY, SOURCE, [data])
    _cli(ws, "repo", "init")
    _cli(ws, "backup", "--agency", AGENCY)
    clean = manifest(data)
    for path in sorted(p for p in data.rglob("*") if p.is_file())[::2]:
        path.write_bytes(os.urandom(path.stat().st_size))
    (data / "README_DECRYPT.txt").write_text("your files are encrypted\n")
    _cli(ws, "backup", "--agency", AGENCY)

    path = RUNBOOKS / "en" / "ransomware-suspected.md"
    script = tmp_path / "runbook.sh"
    script.write_text(_script(path))
    target = tmp_path / "restore-target"
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8", "AGENCY": AGENCY,
           "SOURCE": SOURCE, "TARGET": str(target), "DRBACKUP_CONFIG": str(ws.config_path)}
    for passed in ("TMPDIR", "PYTHONPATH"):
        if passed in os.environ:
            env[passed] = os.environ[passed]
    result = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    unmet = _unmet_expectations(path, result.stdout)
    assert not unmet, "\n".join(unmet)
    assert manifest(target / data.relative_to("/")) == clean
