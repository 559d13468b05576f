"""drbackup recovery-kit keygen --out KEYFILE
drbackup recovery-kit create --recipient PUB_FILE [--agency A] [--include-s3-credentials] [--pdf]
                             --out DIR
drbackup recovery-kit open --identity KEY_FILE --kit KIT --out DIR
                           (--signer-fingerprint FP | --signer PUB_PEM) [--allow-unsigned]"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path
from typing import Any

from drbackup.cli.context import CliContext
from drbackup.errors import UsageError

# The sealing code loads `cryptography` (about 13 ms): imported by the kit verbs themselves, so
# every other verb (a restore under time pressure) starts without it.


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "recovery-kit", help="break-glass kit: repository URLs and passwords sealed to an "
                             "offline key")
    verbs = parser.add_subparsers(dest="kit_command", metavar="ACTION")
    verbs.required = True
    keygen = verbs.add_parser("keygen", help="make the offline X25519 key pair")
    keygen.add_argument("--out", required=True, type=Path,
                        help="private key file (0600); the public key goes to OUT.pub")
    keygen.set_defaults(handler=keygen_now)
    create = verbs.add_parser("create", help="seal the kit, write it locally, upload to stores")
    create.add_argument("--recipient", required=True, type=Path, help="public key file (.pub)")
    create.add_argument("--agency", action="append", default=[],
                        help="only this agency (repeatable; default: all)")
    create.add_argument("--include-s3-credentials", action="store_true",
                        help="also seal the stores' S3 credentials (prefer read-only keys)")
    create.add_argument("--out", required=True, type=Path, help="directory for the kit files")
    create.add_argument("--no-upload", action="store_true", help="do not copy it to the stores")
    create.add_argument("--pdf", action="store_true",
                        help="also write NAME.pdf: instructions, the kit as QR codes, the "
                             "armored text")
    create.set_defaults(handler=create_now)
    opener = verbs.add_parser("open", help="open a kit on a fresh host: write a working config")
    opener.add_argument("--identity", required=True, type=Path, help="private key file")
    opener.add_argument("--kit", required=True, type=Path,
                        help="the .kit file, the printed .txt document, or a file of the "
                             "PDF's scanned QR codes (one a line, any order)")
    opener.add_argument("--out", required=True, type=Path, help="new directory for the config")
    opener.add_argument("--signer-fingerprint", metavar="FP",
                        help="the 'Signed by host key' fingerprint printed on the paper kit; "
                             "a kit signed by another key is refused")
    opener.add_argument("--signer", type=Path, metavar="PUB_PEM",
                        help="instead: the creating host's public key "
                             "(<state_dir>/evidence/ed25519.pub.pem)")
    opener.add_argument("--allow-unsigned", action="store_true",
                        help="open a kit made before kits were signed (prints a warning: "
                             "anyone with the public recipient key can forge one)")
    opener.set_defaults(handler=open_now)


def keygen_now(ctx: CliContext) -> int:
    from drbackup.recovery.sealing import generate_identity, identity_text, recipient_text, spaced

    private: Path = ctx.args.out.absolute()
    public = private.with_name(private.name + ".pub")
    for path in (private, public):
        if path.exists():
            raise UsageError(f"{path} already exists", "choose another --out; never overwrite "
                             "a key that may have sealed kits")
    identity = generate_identity()
    private.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(identity_text(identity))
    public.write_text(recipient_text(identity), encoding="utf-8")
    ctx.out.result(
        {"identity": str(private), "recipient": str(public), "fingerprint": identity.fingerprint},
        f"identity (keep offline): {private}\nrecipient (give to drbackup hosts): {public}\n"
        f"fingerprint: {spaced(identity.fingerprint)}")
    return 0


def create_now(ctx: CliContext) -> int:
    from drbackup.recovery.kit import create_kit
    from drbackup.recovery.sealing import load_recipient, spaced

    recipient = load_recipient(ctx.args.recipient)
    outcome = create_kit(ctx.runtime, recipient, ctx.args.out.absolute(),
                         agency_ids=ctx.args.agency or None,
                         include_s3_credentials=ctx.args.include_s3_credentials,
                         upload=not ctx.args.no_upload, pdf=ctx.args.pdf)
    lines = [f"recovery kit for {', '.join(outcome.agencies)} sealed to "
             f"{spaced(outcome.recipient_fingerprint)}",
             f"  signed by host key {spaced(outcome.signer_fingerprint)}  (printed on the kit; "
             "'recovery-kit open' checks it)",
             f"  kit file:  {outcome.kit_file}",
             f"  printout:  {outcome.document}  (print it; store it with the identity key apart)"]
    if outcome.pdf is not None:
        lines.append(f"  PDF:       {outcome.pdf}  (the same, plus the kit as QR codes)")
    lines += [f"  uploaded:  {where}" for where in outcome.uploaded]
    ctx.out.result(outcome, "\n".join(lines))
    return 0


def open_now(ctx: CliContext) -> int:
    from drbackup.recovery.kit import open_kit
    from drbackup.recovery.sealing import load_identity, spaced
    from drbackup.recovery.signing import normalize_fingerprint, signer_fingerprint
    from drbackup.verify.evidence import load_public_key

    args = ctx.args
    if args.signer is not None and args.signer_fingerprint is not None:
        raise UsageError("--signer and --signer-fingerprint exclude each other",
                         "give one of them")
    expected = (normalize_fingerprint(args.signer_fingerprint) if args.signer_fingerprint
                else signer_fingerprint(load_public_key(args.signer)) if args.signer else None)
    identity = load_identity(args.identity)
    outcome = open_kit(args.kit, identity, args.out, signer=expected,
                       allow_unsigned=args.allow_unsigned)
    if outcome.signer is None:
        print("drbackup: WARNING: this recovery kit is NOT SIGNED: anyone holding the public "
              "recipient key could have made it. Check every store below before use, and "
              "re-create the kit on the agency host.", file=sys.stderr, flush=True)
    lines = [f"opened recovery kit of {outcome.created} for agencies {', '.join(outcome.agencies)}",
             "  signed by host key "
             + (spaced(outcome.signer) if outcome.signer else "NOBODY (unsigned kit)"),
             *[f"  store {where}" for where in outcome.store_locations],
             f"  config: {outcome.config_file}",
             f"  next:   export DRBACKUP_CONFIG={outcome.config_file}",
             "          drbackup snapshots --agency AGENCY"]
    lines += [f"  the kit has no S3 credentials: write read-only keys into {path} "
              "([default] aws_access_key_id / aws_secret_access_key), chmod 600"
              for path in outcome.missing_credentials]
    ctx.out.result(outcome, "\n".join(lines))
    return 0
