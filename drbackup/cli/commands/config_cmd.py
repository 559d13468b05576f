"""drbackup config check | example"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.config import ConfigInvalid, ConfigProblem, load_config, resolve_config_path
from drbackup.config.example import render_example
from drbackup.config.models import Config
from drbackup.config.unit import find_unit, read_unit, unit_problems
from drbackup.errors import ExitCode


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "config", help="check or explain the config")
    verbs = parser.add_subparsers(dest="config_command", metavar="ACTION")
    verbs.required = True
    check = verbs.add_parser("check", help="validate the config file; one-line verdict")
    check.add_argument("--offline", action="store_true",
                       help="skip checks of secret files and of the installed unit (for "
                            "linting a config on another host)")
    check.add_argument("--unit", metavar="PATH", type=Path,
                       help="check the config against this systemd unit (default: the "
                            "installed drbackup.service, if any)")
    check.set_defaults(handler=check_config)
    example = verbs.add_parser("example", help="print the documented example config")
    example.set_defaults(handler=print_example)


def check_config(ctx: CliContext) -> int:
    path = resolve_config_path(ctx.args.config)
    try:
        config = load_config(path, check_files=not ctx.args.offline)
        if not ctx.args.offline:
            # Host checks: what the config asks of this machine (server packages for drills).
            from drbackup.verify.instance import missing_server_programs
            missing = missing_server_programs(config)
            if missing:
                raise ConfigInvalid(path, [ConfigProblem(k, m) for k, m in missing])
        unit = ctx.args.unit or (None if ctx.args.offline else find_unit())
        if unit is not None:
            refused = _unit_problems(path, config, unit)
            if refused:
                raise ConfigInvalid(path, refused)
    except ConfigInvalid as exc:
        problems = [str(p) for p in exc.problems]
        if ctx.out.json_mode:
            ctx.out.result({"valid": False, "path": str(path), "problems": problems})
        else:
            print(f"drbackup: error: config {path} is invalid: {len(problems)} problem(s)",
                  file=sys.stderr)
            for problem in problems:
                print(f"  {path}: {problem}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    sources = sum(len(a.sources) for a in config.agencies)
    ctx.out.result(
        {"valid": True, "path": str(path), "agencies": len(config.agencies), "sources": sources},
        f"config {path} is valid: {len(config.agencies)} agencies, {sources} sources, "
        f"{len(config.stores)} stores")
    return 0


def _unit_problems(path: Path, config: Config, unit: Path) -> list[ConfigProblem]:
    try:
        settings = read_unit(unit)
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [ConfigProblem("", f"cannot read the unit {unit}: {exc}")]
    names = {a.store for a in config.agencies} | {r for a in config.agencies for r in a.replicas}
    written = {"daemon.state_dir": config.daemon.state_dir,
               "daemon.cache_dir": config.daemon.cache_dir}
    for name in sorted(names):
        store_path = config.store(name).path
        if store_path is not None:
            written[f"stores.{name}.path"] = store_path
    return [ConfigProblem(k, m) for k, m in unit_problems(settings, raw, written)]


def print_example(ctx: CliContext) -> int:
    sys.stdout.write(render_example())
    return 0
