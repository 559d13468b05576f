"""drbackup verify-report FILE [--public-key PEM]: check an evidence report's signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.errors import DrBackupError, NotFoundError, UsageError, VerifyFailedError
from drbackup.verify.evidence import (
    KEY_DIR,
    PUBLIC_KEY_FILE,
    load_public_key,
    verify_envelope,
)


def register(commands: Any) -> None:
    parser = commands.add_parser("verify-report",
                                 help="check the signature of a check or drill evidence report")
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument("--public-key", type=Path, metavar="PEM",
                        help="the daemon's public key (default: <state_dir>/evidence/"
                             "ed25519.pub.pem of the configured daemon)")
    parser.set_defaults(handler=verify_report)


def verify_report(ctx: CliContext) -> int:
    key_path: Path | None = ctx.args.public_key
    if key_path is None:
        try:
            key_path = ctx.config.daemon.state_dir / KEY_DIR / PUBLIC_KEY_FILE
        except DrBackupError as exc:
            raise UsageError(f"no public key given and no config to find one: {exc.message}",
                             "pass --public-key PEM (the daemon's "
                             "<state_dir>/evidence/ed25519.pub.pem)") from None
    public_key = load_public_key(key_path)
    path: Path = ctx.args.file
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotFoundError(f"cannot read report {path}: {exc.strerror}",
                            "check the path") from None
    except (ValueError, UnicodeDecodeError):
        raise VerifyFailedError(f"report {path} is not valid JSON",
                                "the file is damaged or not a drbackup report") from None
    verified = verify_envelope(envelope, public_key, name=f"report {path}")
    report = verified.report
    summary = {"file": str(path), "valid": True, "key_id": verified.key_id,
               "kind": report.get("kind"), "agency": report.get("agency"),
               "source": report.get("source"), "run_id": report.get("run_id"),
               "verdict": report.get("verdict"), "finished_at": report.get("finished_at")}
    ctx.out.result(summary, human=(
        f"signature OK (key {verified.key_id}): {report.get('kind')} of "
        f"{report.get('agency')}{'/' + str(report['source']) if report.get('source') else ''}"
        f", run {report.get('run_id')}, {report.get('finished_at')}, verdict "
        f"{report.get('verdict')}"))
    return 0
