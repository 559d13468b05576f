"""The kit's sealing: round trip, and every way a kit can be wrong fails with RecoveryKitError."""

from __future__ import annotations

from pathlib import Path

import pytest

from drbackup.errors import ExitCode
from drbackup.recovery.sealing import (
    BEGIN,
    END,
    Recipient,
    RecoveryKitError,
    generate_identity,
    identity_text,
    load_identity,
    load_recipient,
    open_sealed,
    recipient_text,
    seal,
)

CREATED = "2026-11-28T09:00:00+00:00"
SECRET = b'{"password": "correct horse battery staple"}'


def test_round_trip_and_key_files(tmp_path: Path) -> None:
    identity = generate_identity()
    (tmp_path / "id").write_text(identity_text(identity))
    (tmp_path / "id.pub").write_text(recipient_text(identity))
    loaded = load_identity(tmp_path / "id")
    recipient = load_recipient(tmp_path / "id.pub")
    assert recipient.fingerprint == loaded.fingerprint == identity.fingerprint
    armored = seal(SECRET, recipient, CREATED)
    assert armored.startswith(BEGIN + "\n") and armored.endswith(END + "\n")
    assert f"Recipient: {identity.fingerprint}" in armored
    assert b"correct horse" not in armored.encode()
    assert open_sealed(armored, loaded) == SECRET
    # Surrounding text (the printable document) does not matter.
    assert open_sealed("Instructions...\n\n" + armored + "\nfooter\n", loaded) == SECRET


def test_wrong_identity_is_named() -> None:
    kit = seal(SECRET, Recipient(generate_identity().private.public_key()), CREATED)
    with pytest.raises(RecoveryKitError, match="sealed to key") as info:
        open_sealed(kit, generate_identity())
    assert info.value.exit_code == ExitCode.KIT_INVALID


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.6, 0.95])
def test_truncated_kit_fails(keep: float) -> None:
    identity = generate_identity()
    kit = seal(SECRET, Recipient(identity.private.public_key()), CREATED)
    with pytest.raises(RecoveryKitError):
        open_sealed(kit[: int(len(kit) * keep)], identity)
    # Dropping one whole base64 line keeps a well-formed armor but not the data.
    lines = kit.split("\n")
    with pytest.raises(RecoveryKitError):
        open_sealed("\n".join(lines[:5] + lines[6:]), identity)


def test_every_single_flipped_byte_is_detected() -> None:
    identity = generate_identity()
    kit = seal(SECRET, Recipient(identity.private.public_key()), CREATED).encode()
    for position in range(len(kit)):
        damaged = bytearray(kit)
        damaged[position] ^= 0x01
        with pytest.raises(RecoveryKitError):
            open_sealed(damaged.decode("latin-1"), identity)


def test_not_a_key_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus"
    bogus.write_text("hello\n")
    with pytest.raises(RecoveryKitError, match="not a drbackup identity file"):
        load_identity(bogus)
    with pytest.raises(RecoveryKitError, match="does not exist"):
        load_recipient(tmp_path / "missing.pub")


def test_swapped_key_files_are_named(tmp_path: Path) -> None:
    """Under stress the .pub and the private file get swapped; the error says which is which."""
    identity = generate_identity()
    private, public = tmp_path / "identity", tmp_path / "identity.pub"
    private.write_text(identity_text(identity))
    public.write_text(recipient_text(identity))
    with pytest.raises(RecoveryKitError, match="is the public recipient key, not the identity"):
        load_identity(public)
    with pytest.raises(RecoveryKitError, match="is the private identity key, not the recipient"):
        load_recipient(private)
    assert load_identity(private).fingerprint == load_recipient(public).fingerprint
