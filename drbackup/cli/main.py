"""drbackup's command line: thin verbs over jobs and state. Expected failures print one line
(`drbackup: error: <cause> (<what to do>)`) and exit with the code documented in README.md."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType

from drbackup.cli.context import CliContext
from drbackup.cli.output import Output
from drbackup.errors import DrBackupError, ExitCode
from drbackup.logs import setup_logging

Handler = Callable[[CliContext], int]


def _command_modules() -> list[ModuleType]:
    # Explicit wiring (no discovery by name): a verb exists because it is listed here.
    from drbackup.cli.commands import (
        backup,
        browse,
        config_cmd,
        metrics,
        recovery_kit,
        replicate,
        repo,
        restore,
        restore_db,
        retention,
        run,
        snapshots,
        status,
        store,
        unlock,
        version,
    )
    from drbackup.cli.commands import report as report_cmd
    from drbackup.cli.commands import verify as verify_cmd
    from drbackup.cli.commands import verify_report as verify_report_cmd

    return [config_cmd, version, repo, backup, snapshots, restore, restore_db,
            verify_cmd, report_cmd, verify_report_cmd, run, status, browse, recovery_kit,
            store, replicate, retention, metrics, unlock]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"drbackup: error: {message} (see 'drbackup --help')", file=sys.stderr)
        raise SystemExit(ExitCode.USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="drbackup", description=__doc__)
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $DRBACKUP_CONFIG, then "
                             "/etc/drbackup/drbackup.toml)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--quiet", "-q", action="store_true", help="only errors and results")
    parser.add_argument("--debug", action="store_true", help="tracebacks for unexpected errors")
    parser.add_argument("--log-format", choices=["auto", "json", "human"], default="auto")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for module in _command_modules():
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    try:
        return handler(ctx)
    except DrBackupError as exc:
        print(f"drbackup: error: {exc.one_line()}", file=sys.stderr, flush=True)
        return int(exc.exit_code)
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
        ctx.close()


def entry() -> None:
    sys.exit(main())
