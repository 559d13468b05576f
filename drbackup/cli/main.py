"""drbackup's command line: thin verbs over jobs and state. Expected failures print one line
(`drbackup: error: <cause> (<what to do>)`) and exit with the code documented in README.md."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.cli.output import Output
from drbackup.errors import DrBackupError, ExitCode
from drbackup.logs import setup_logging

Handler = Callable[[CliContext], int]


# Explicit wiring (no discovery by name): a verb exists because it is listed here, with the
# module (under drbackup.cli.commands) whose register() adds it. Order = order in --help.
VERB_MODULES: dict[str, str] = {
    "config": "config_cmd", "version": "version", "repo": "repo", "backup": "backup",
    "snapshots": "snapshots", "restore": "restore", "restore-db": "restore_db",
    "verify": "verify", "report": "report", "verify-report": "verify_report", "run": "run",
    "status": "status", "ls": "browse", "find": "browse", "recovery-kit": "recovery_kit",
    "store": "store", "replicate": "replicate", "forget": "retention", "prune": "retention",
    "metrics": "metrics", "unlock": "unlock", "guard": "guard", "media": "media",
    "maintenance": "maintenance", "fleet": "fleet",
}
# Global options that take a value: the word after them is not the verb.
_VALUED_OPTIONS = {"--config", "--log-format"}


def requested_verb(argv: Sequence[str]) -> str | None:
    """The verb on the command line, when it is a known one; None otherwise (no verb, --help
    before it, an unknown word): then every verb is loaded, for the full help or the error."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in VERB_MODULES else None
    return None


def _command_modules(verb: str | None = None) -> list[ModuleType]:
    """The modules registering every verb, or only `verb`'s: a one-shot command (a restore
    under pressure) imports what it runs, not the code and libraries of twenty other verbs."""
    names = [VERB_MODULES[verb]] if verb is not None else list(dict.fromkeys(
        VERB_MODULES.values()))
    return [importlib.import_module(f"drbackup.cli.commands.{name}") for name in names]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"drbackup: error: {message} (see 'drbackup --help')", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every verb takes, on either side of it (`drbackup snapshots --json`, as with
    restic). The top parser holds the defaults; on a verb's parser they default to SUPPRESS, so
    an option given before the verb is not reset by the verb's parser."""
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument("--config", metavar="PATH", default=default(None),
                       help="config file (default: $DRBACKUP_CONFIG, then "
                            "/etc/drbackup/drbackup.toml)")
    group.add_argument("--json", action="store_true", default=default(False),
                       help="machine-readable output")
    group.add_argument("--quiet", "-q", action="store_true", default=default(False),
                       help="only errors and results")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="tracebacks for unexpected errors")
    group.add_argument("--log-format", choices=["auto", "json", "human"],
                       default=default("auto"))


class _VerbParser(_Parser):
    """A verb's (or sub-verb's) parser: it takes the global options too. Nested
    add_subparsers() use the parent's class, so `config check --json` works as well."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        _add_global_options(self, defaults=False)


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser for every verb, or for `verb` alone (see requested_verb)."""
    # No abbreviated options: requested_verb must know which words are option values.
    parser = _Parser(prog="drbackup", description=__doc__, allow_abbrev=False)
    _add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_VerbParser)
    commands.required = True
    for module in _command_modules(verb):
        module.register(commands)
    return parser


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a closed ssh session, `timeout`, `systemctl stop` of a one-shot unit)
    during a one-shot command. Raised like Ctrl-C, so the runner stops restic (it runs in its own
    process group, out of reach of the signal) and the run is recorded as interrupted, instead
    of drbackup vanishing and leaving restic writing on its own."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame: object) -> None:
    raise StopSignal(signum)


def _stop_signals_interrupt() -> dict[int, Any]:
    """Route SIGTERM and SIGHUP into StopSignal; returns the handlers to put back (in-process
    callers, e.g. tests, keep theirs). The daemon and `metrics serve` install their own."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _raise_stop)
            for signum in (signal.SIGTERM, signal.SIGHUP)}


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(requested_verb(words))
    args = parser.parse_args(words)
    if args.debug:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.WARNING
    else:
        # One-shot verbs report through their output; the daemon ("run") logs every event.
        level = logging.INFO if args.command == "run" else logging.WARNING
    setup_logging(args.log_format, level)
    ctx = CliContext(args=args, out=Output(args.json, quiet=args.quiet))
    handler: Handler = args.handler
    previous = _stop_signals_interrupt() if args.command != "run" else {}
    try:
        return handler(ctx)
    except DrBackupError as exc:
        print(f"drbackup: error: {exc.one_line()}", file=sys.stderr, flush=True)
        return int(exc.exit_code)
    except StopSignal as exc:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(f"drbackup: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("drbackup: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, never a bare traceback
        if args.debug:
            traceback.print_exc()
        print(f"drbackup: internal error: {exc.__class__.__name__}: {exc} "
              "(run with --debug for details and report it)", file=sys.stderr)
        return int(ExitCode.INTERNAL)
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
        ctx.close()


def entry() -> None:
    code = main()
    # The interpreter's teardown (freeing every module and object) costs ~25 ms that every
    # one-shot command pays after its work is done. drbackup registers no atexit work and closes
    # its state database in main(); once logs and output are flushed, and when no non-daemon
    # thread is still running, leaving at once loses nothing.
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        sys.exit(code)
    if any(not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)
    os._exit(code)
