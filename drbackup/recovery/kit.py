"""The break-glass recovery kit: what an emergency team needs to restore an agency with nothing
else — repository URLs (primary and replicas), repository passwords and, optionally, S3
credentials — sealed to an offline X25519 key (drbackup.recovery.sealing).

`create_kit` seals it, writes it locally (kit file + printable document) and uploads a copy to
every store; `open_kit` turns it back into a minimal working config on a fresh host.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drbackup.config.models import AgencyConfig, Config
from drbackup.errors import ConfigError, TargetRefusedError
from drbackup.jobs.runtime import Runtime
from drbackup.jobs.tags import contained
from drbackup.recovery import kit_databases, offline, qrparts
from drbackup.recovery.render import render_config, render_restic_env
from drbackup.recovery.sealing import (
    BEGIN,
    Identity,
    Recipient,
    RecoveryKitError,
    open_sealed,
    seal,
    spaced,
)
from drbackup.recovery.signing import (
    SignedKit,
    check_names,
    check_signer,
    sign_payload,
    signer_fingerprint,
    unwrap,
)
from drbackup.store import S3Location, read_credentials_file
from drbackup.verify.evidence import EvidenceKey

PAYLOAD_FORMAT = "drbackup-recovery-kit"
PAYLOAD_VERSION = 1
REMOTE_DIR = "_recovery-kit"  # '_' cannot start an agency id, so never clashes with a repository


def kit_name(agency_ids: list[str] | None) -> str:
    suffix = "-".join(agency_ids) if agency_ids else "all"
    return f"drbackup-recovery-kit-{suffix}"


def _read_password(agency: AgencyConfig) -> str:
    try:
        return agency.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"password file of agency {agency.id!r} cannot be read "
                          f"({exc.__class__.__name__})", "check agencies[].password_file") from None


def build_payload(config: Config, agencies: list[AgencyConfig], *, include_s3_credentials: bool,
                  created: str) -> dict[str, Any]:
    """The kit's plaintext content (it holds secrets: never log or print it)."""
    stores: dict[str, Any] = {}
    entries = []
    for agency in agencies:
        repositories: dict[str, str] = {}
        for name in [agency.store, *agency.replicas]:
            store = config.store(name)
            if store.url is not None:
                stores[name] = {"url": store.url, "region": store.region}
                repositories[name] = S3Location.parse(store.url).child(agency.id).restic_url
                source = store.recovery_credentials_file or store.credentials_file
                if include_s3_credentials and source is not None:
                    creds = read_credentials_file(source)
                    stores[name]["credentials"] = {
                        "aws_access_key_id": creds.access_key_id,
                        "aws_secret_access_key": creds.secret_access_key,
                        **({"aws_session_token": creds.session_token}
                           if creds.session_token else {})}
            else:
                assert store.path is not None
                stores[name] = {"path": str(store.path)}
                repositories[name] = str(store.path / agency.id)
        entries.append({
            "id": agency.id, "store": agency.store, "replicas": list(agency.replicas),
            "repositories": repositories, "password": _read_password(agency),
            # Several hosts, one agency: the sources below are this host's only; the others'
            # are found by their snapshots' tags (restore --all-sources).
            **({"maintenance_host": agency.maintenance_host} if agency.maintenance_host
               else {}),
            "sources": [kit_databases.source_entry(s) for s in agency.sources],
            **({"offline": media} if (media := offline.entry(config, agency)) else {}),
        })
    return {"format": PAYLOAD_FORMAT, "version": PAYLOAD_VERSION, "created": created,
            "host": config.host_name(), "stores": stores, "agencies": entries,
            "restore_targets": kit_databases.targets_payload(config)}


def remote_kit_file(config: Config, agencies: list[AgencyConfig], name: str) -> str:
    """The kit's file name in the stores. When an agency of the kit is backed up by several
    hosts (maintenance_host set), each host's kit is its own file, `<name>.<host>.kit`: one
    host's kit must not replace another's (each names its own sources and is signed by its
    own host key)."""
    if any(agency.maintenance_host for agency in agencies):
        return f"{name}.{config.host_name()}.kit"
    return f"{name}.kit"


def document_lines(recipient: Recipient, payload_summary: list[str], name: str,
                   created: str, signer: str = "", remote: str | None = None) -> list[str]:
    """The printout's text before the armored block: instructions, contents, fingerprint, date
    (the .txt document and the PDF both hold these lines)."""
    return [
        "DRBACKUP RECOVERY KIT (break-glass)",
        "===================================",
        "",
        "This document lets the emergency team restore the agencies below on a new machine.",
        "It is encrypted: only the holder of the offline identity key can open it.",
        "",
        f"Sealed to recipient key  {spaced(recipient.fingerprint)}",
        "Before opening, check that the identity file states the same fingerprint.",
        f"Signed by host key       {spaced(signer)}",
        "Opening checks the kit was signed by this key: give these digits to",
        "'recovery-kit open --signer-fingerprint'. A kit signed by another key is forged.",
        f"Created {created}",
        "",
        "Contents (no secrets are readable here):",
        *[f"  - {line}" for line in payload_summary],
        "",
        "To use it (runbook: runbooks/en/full-recovery-from-kit.md,",
        "           zh-CN: runbooks/zh-CN/full-recovery-from-kit.md;",
        "           from the PDF's QR codes: full-recovery-from-printed-kit.md):",
        "  1. Install drbackup and restic on the new host.",
        f"  2. Copy the armored block (BEGIN to END lines, exactly) into {name}.kit,",
        f"     or download {'that file' if remote in (None, name + '.kit') else remote} from any "
        "store: <bucket>/<prefix>/_recovery-kit/,",
        "     or, from the PDF printout, scan all its QR codes into one file, one a line, any",
        f"     order (zbarimg --raw -q PAGE.png >> {name}.parts) and use that file as the kit.",
        f"  3. drbackup recovery-kit open --identity IDENTITY_FILE --kit {name}.kit --out DIR",
        "     --signer-fingerprint 'THE SIGNED BY DIGITS ABOVE'",
        "  4. export DRBACKUP_CONFIG=DIR/drbackup.toml",
        "  5. drbackup snapshots --agency AGENCY",
        "  6. drbackup restore --agency AGENCY --source SOURCE --target /srv/restore",
        "     (databases: drbackup restore-db --agency AGENCY --source SOURCE --all-databases",
        "      --target STANDBY, or --into NEW_FILE for SQLite)",
        "  Only an offline medium left (the stores gone): mount it (read-only is enough), do",
        "  steps 3-4, then: drbackup restore --from-media /media/MEDIUM --agency AGENCY",
        "  --all-sources --target /srv/restore (runbook: restore-from-offline-medium.md)",
        "",
    ]


def printable(armored: str, recipient: Recipient, payload_summary: list[str], name: str,
              created: str = "", signer: str = "", remote: str | None = None) -> str:
    """The document to print and put in the safe: instructions, fingerprint, the armored kit."""
    lines = [*document_lines(recipient, payload_summary, name, created, signer, remote),
             armored.rstrip("\n"), ""]
    return "\n".join(lines)


@dataclass
class CreateOutcome:
    kit_file: Path
    document: Path
    recipient_fingerprint: str
    agencies: list[str]
    signer_fingerprint: str = ""  # the creating host's evidence key: printed on the kit
    pdf: Path | None = None  # with --pdf: instructions, QR codes and the armored text
    uploaded: list[str] = field(default_factory=list)  # store:key or path
    s3_credentials_included: bool = False


def create_kit(rt: Runtime, recipient: Recipient, out_dir: Path, *,
               agency_ids: list[str] | None = None, include_s3_credentials: bool = False,
               upload: bool = True, pdf: bool = False) -> CreateOutcome:
    config = rt.config
    agencies = ([config.agency(a) for a in agency_ids] if agency_ids
                else list(config.agencies))
    if not agencies:
        raise ConfigError("there are no agencies in the config", "add one, then create the kit")
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    payload = build_payload(config, agencies, include_s3_credentials=include_s3_credentials,
                            created=created)
    # Signed with the host's evidence key, inside the seal: sealing alone proves nothing, as
    # anyone with the team's public key can seal (drbackup.recovery.signing).
    key = EvidenceKey.load_or_create(config.daemon.state_dir)
    signer = signer_fingerprint(key.public_key)
    armored = seal(json.dumps(sign_payload(key, payload), sort_keys=True).encode(), recipient,
                   created)
    name = kit_name(agency_ids)
    remote = remote_kit_file(config, agencies, name)
    summary = [f"agency {a['id']}: stores {', '.join(a['repositories'])}; sources "
               f"{', '.join(s['id'] for s in a['sources']) or 'none'}"
               + (f" (those of host {payload['host']}; other hosts' sources come back by their "
                  f"snapshots: restore --all-sources; maintenance host {a['maintenance_host']})"
                  if a.get("maintenance_host") else "")
               for a in payload["agencies"]]
    summary += [line for a in payload["agencies"] if (line := offline.summary(a))]
    summary.append("S3 credentials: " + ("included" if include_s3_credentials else
                                         "NOT included (bring read-only keys)"))
    out_dir.mkdir(parents=True, exist_ok=True)
    kit_file = out_dir / f"{name}.kit"
    document = out_dir / f"{name}.txt"
    _write_atomic(kit_file, armored.encode())
    _write_atomic(document, printable(armored, recipient, summary, name, created,
                                      signer, remote).encode())
    outcome = CreateOutcome(kit_file, document, recipient.fingerprint,
                            [a.id for a in agencies], signer,
                            s3_credentials_included=include_s3_credentials)
    if pdf:
        from drbackup.recovery import pdf as pdf_document  # fpdf2 + segno: only for --pdf

        outcome.pdf = out_dir / f"{name}.pdf"
        _write_atomic(outcome.pdf, pdf_document.render(
            armored, document_lines(recipient, summary, name, created, signer, remote), name,
            [f"Sealed to recipient key  {spaced(recipient.fingerprint)}",
             f"Signed by host key  {spaced(signer)}", f"Created {created}"]))
    if upload:
        store_names = sorted({n for a in agencies for n in [a.store, *a.replicas]})
        for store_name in store_names:
            outcome.uploaded.append(_upload(rt, store_name, remote, armored.encode()))
    return outcome


def _upload(rt: Runtime, store_name: str, filename: str, data: bytes) -> str:
    store = rt.store_config(store_name)
    s3 = rt.s3_store(store_name)
    if s3 is not None:
        s3.ensure_bucket(create=store.create_bucket)
        prefix = s3.location.prefix
        key = f"{prefix}/{REMOTE_DIR}/{filename}" if prefix else f"{REMOTE_DIR}/{filename}"
        s3.put_bytes(key, data)
        return f"{store_name}:s3://{s3.bucket}/{key}"
    assert store.path is not None
    path = store.path / REMOTE_DIR / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    return f"{store_name}:{path}"


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- opening ----------------------------------------------------------------------------------


@dataclass
class OpenOutcome:
    out_dir: Path
    config_file: Path
    agencies: list[str]
    stores: list[str]
    missing_credentials: list[str]  # credentials files the operator must still provide
    created: str
    signer: str | None = None  # fingerprint of the key that signed it; None: unsigned, allowed
    store_locations: list[str] = field(default_factory=list)  # "name: url or path", to show


def _check_payload(payload: object) -> dict[str, Any]:
    if (not isinstance(payload, dict) or payload.get("format") != PAYLOAD_FORMAT
            or not isinstance(payload.get("agencies"), list)
            or not isinstance(payload.get("stores"), dict)):
        raise RecoveryKitError("the recovery kit's content is not a drbackup kit",
                               "it opened, but was not made by 'drbackup recovery-kit create'")
    if payload.get("version") != PAYLOAD_VERSION:
        raise RecoveryKitError(f"recovery kit content version {payload.get('version')!r} is not "
                               "supported", "use the drbackup release that made the kit")
    return payload


def read_kit(kit: Path, identity: Identity) -> SignedKit:
    """The kit's content and its signer, the signature verified (not yet whom it names).

    Raises RecoveryKitError."""
    try:
        data = kit.read_bytes()
        if data.startswith(b"%PDF-"):
            raise RecoveryKitError(
                f"{kit} is the PDF printout, not the kit",
                "scan its QR codes into a text file (pdftoppm -r 150 -png FILE.pdf page; "
                "zbarimg --raw -q page-*.png > parts.txt) and pass that file, or the .kit file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise RecoveryKitError(f"kit file {kit} does not exist", "check the path") from None
    except UnicodeDecodeError:
        raise RecoveryKitError(f"the recovery kit {kit} is damaged: it is not text",
                               "use another copy: each store holds one") from None
    except OSError as exc:
        raise RecoveryKitError(f"kit file {kit} cannot be read ({exc.__class__.__name__})",
                               "check the path and its permissions") from None
    if BEGIN not in text and qrparts.looks_like_parts(text):
        text = qrparts.join(text)  # scanned QR codes of the PDF printout
    plaintext = open_sealed(text, identity)
    try:
        signed = unwrap(json.loads(plaintext), unsigned_format=PAYLOAD_FORMAT)
        return SignedKit(_check_payload(signed.payload), signed.signer)
    except ValueError:
        raise RecoveryKitError("the recovery kit's content is not valid JSON",
                               "use another copy") from None


def open_kit(kit: Path, identity: Identity, out_dir: Path, *, signer: str | None,
             allow_unsigned: bool = False) -> OpenOutcome:
    """Write DIR/drbackup.toml, DIR/passwords/*.password, DIR/credentials/*.credentials and
    DIR/restic/<agency>@<store>.env (plain restic's settings; all 0600) from the kit. Nothing
    is written unless the kit opens completely, is signed by `signer` (a fingerprint; an
    unsigned kit only with allow_unsigned) and names only valid ids: the files go to a temp dir
    that is renamed into place at the end.

    Raises RecoveryKitError (forged, unsigned, damaged, wrong identity) and TargetRefusedError."""
    out_dir = out_dir.absolute()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RecoveryKitError(f"{out_dir} exists and is not an empty directory",
                               "choose a new directory for --out")
    signed = read_kit(kit, identity)
    check_signer(signed, expected=signer, allow_unsigned=allow_unsigned)
    payload = signed.payload
    check_names(payload)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    except OSError as exc:
        raise TargetRefusedError(f"cannot write into {out_dir.parent}: {exc.strerror}",
                                 "choose a writable directory for --out") from None
    try:
        text, missing = render_config(payload, out_dir)
        (temp / "passwords").mkdir(mode=0o700)
        (temp / "credentials").mkdir(mode=0o700)
        for agency in payload["agencies"]:
            _secret(contained(temp / "passwords", f"{agency['id']}.password"),
                    agency["password"] + "\n")
        for name, body in kit_databases.restore_target_secrets(payload).items():
            (temp / kit_databases.PASSWORDS_DIR).mkdir(mode=0o700, exist_ok=True)
            _secret(contained(temp / kit_databases.PASSWORDS_DIR, name), body)
        for name, store in payload["stores"].items():
            creds = store.get("credentials")
            if isinstance(creds, dict):
                body = "[default]\n" + "".join(f"{k} = {v}\n" for k, v in creds.items())
                _secret(contained(temp / "credentials", f"{name}.credentials"), body)
        for agency in payload["agencies"]:
            pem = offline.key_pem(agency)
            if pem is not None:
                path = offline.key_file(temp, agency["id"])
                path.parent.mkdir(exist_ok=True)
                contained(path.parent, path.name).write_bytes(pem)
        (temp / "drbackup.toml").write_text(text + "\n", encoding="utf-8")
        (temp / "restic").mkdir(mode=0o700)
        for name, body in render_restic_env(payload, out_dir).items():
            _secret(contained(temp / "restic", name), body)
        temp.chmod(0o700)
        if out_dir.exists():
            out_dir.rmdir()
        os.rename(temp, out_dir)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise TargetRefusedError(f"cannot write the opened kit to {out_dir}: {exc.strerror}",
                                 "choose a writable directory with free space for --out; "
                                 "nothing was left behind") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return OpenOutcome(out_dir, out_dir / "drbackup.toml",
                       [a["id"] for a in payload["agencies"]], sorted(payload["stores"]),
                       missing, str(payload.get("created", "")), signed.signer,
                       [f"{n}: {st.get('url') or st.get('path')}"
                        for n, st in sorted(payload["stores"].items())])


def _secret(path: Path, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
