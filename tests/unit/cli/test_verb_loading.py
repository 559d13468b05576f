"""The CLI loads only the module of the verb it runs; the verb table and the modules agree."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from drbackup.cli.main import VERB_MODULES, build_parser, requested_verb


def _verbs(parser: argparse.ArgumentParser) -> set[str]:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(commands.choices)


def test_the_full_parser_has_exactly_the_listed_verbs() -> None:
    assert _verbs(build_parser()) == set(VERB_MODULES)


@pytest.mark.parametrize("verb", sorted(VERB_MODULES))
def test_each_verb_is_registered_by_its_module(verb: str) -> None:
    assert verb in _verbs(build_parser(verb))


@pytest.mark.parametrize(("argv", "verb"), [
    (["restore", "--agency", "a"], "restore"),
    (["--config", "restore", "backup"], "backup"),       # a config file named "restore"
    (["--config=/etc/x.toml", "-q", "--json", "ls"], "ls"),
    (["--log-format", "json", "recovery-kit", "open"], "recovery-kit"),
    (["--help", "restore"], None),
    ([], None),
    (["nosuch"], None),
])
def test_requested_verb(argv: list[str], verb: str | None) -> None:
    assert requested_verb(argv) == verb


def test_a_restore_does_not_import_other_verbs_libraries() -> None:
    code = ("import sys; from drbackup.cli.main import build_parser; build_parser('restore'); "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cryptography', 'boto3', 'botocore', 'watchdog', 'fpdf', 'segno'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert loaded == []


def test_every_global_option_that_takes_a_value_is_known_to_the_verb_detection() -> None:
    from drbackup.cli import main as cli_main

    parser = build_parser()
    valued = {option for action in parser._actions if action.nargs != 0
              and not isinstance(action, argparse._SubParsersAction)
              for option in action.option_strings}
    assert valued == cli_main._VALUED_OPTIONS


@pytest.mark.parametrize("argv", [
    ["snapshots", "--json", "--agency", "a"],
    ["--json", "snapshots", "--agency", "a"],
    ["config", "check", "--json"],
    ["config", "--json", "check"],
    ["report", "--json"],
    ["verify", "--agency", "a", "--json"],
    ["status", "--json"],
])
def test_json_is_taken_on_either_side_of_the_verb(argv: list[str]) -> None:
    assert build_parser(requested_verb(argv)).parse_args(argv).json is True


@pytest.mark.parametrize("argv", [
    ["restore", "--agency", "a", "--all-sources", "--config", "/x.toml", "-q", "--debug",
     "--log-format", "json"],
    ["--config", "/x.toml", "--quiet", "--debug", "--log-format", "json", "restore",
     "--all-sources", "--agency", "a"],
    ["--config", "/x.toml", "restore", "-q", "--agency", "a", "--all-sources", "--debug",
     "--log-format=json"],
])
def test_every_global_option_is_taken_after_the_verb_too(argv: list[str]) -> None:
    args = build_parser(requested_verb(argv)).parse_args(argv)
    assert (args.config, args.quiet, args.debug, args.log_format, args.json) == (
        "/x.toml", True, True, "json", False)


def test_a_global_option_before_the_verb_is_not_reset_by_the_verb_parser() -> None:
    args = build_parser("snapshots").parse_args(["--config", "/a.toml", "-q", "snapshots"])
    assert (args.config, args.quiet, args.json, args.log_format) == ("/a.toml", True, False, "auto")


def test_json_after_the_verb_runs_the_command(tmp_path: object) -> None:
    """The README's promise, end to end: `drbackup config check --json` (no 'unrecognized
    arguments'), a JSON verdict on stdout."""
    import json
    from pathlib import Path

    config = Path(str(tmp_path)) / "drbackup.toml"
    config.write_text('[daemon]\nstate_dir = "%s"\n' % (Path(str(tmp_path)) / "state"))
    done = subprocess.run([sys.executable, "-m", "drbackup", "config", "check", "--config",
                           str(config), "--json"], capture_output=True, text=True)
    assert "unrecognized arguments" not in done.stderr
    assert isinstance(json.loads(done.stdout), dict), (done.stdout, done.stderr)
