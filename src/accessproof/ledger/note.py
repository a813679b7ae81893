"""C2SP signed notes (Ed25519) and tlog-checkpoint bodies.

The formats are the ones Go's ``golang.org/x/mod/sumdb/note`` and the transparency-dev tools speak, so an
auditor can check accessproof checkpoints with off-the-shelf tooling:

* key ID   = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]
* verifier = ``name+hex8(key ID)+base64(0x01 ‖ public key)``
* signer   = ``PRIVATE+KEY+name+hex8(key ID)+base64(0x01 ‖ seed)``
* signature line = ``— name base64(key ID ‖ signature)`` (U+2014, space)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 1
EM_DASH = "\u2014"


class NoteError(ValueError):
    """A malformed key or note, or a signature that does not verify."""


def _key_id(name: str, public: bytes) -> int:
    return int.from_bytes(
        hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4], "big"
    )


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"bad key name {name!r}: it must be non-empty with no spaces or '+'")


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: int
    public: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must be name+hash+key")
        name, hexid, b64 = parts
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
            key_id = int(hexid, 16)
        except (binascii.Error, ValueError):
            raise NoteError("verifier key is not valid base64/hex") from None
        if len(hexid) != 8 or len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 note key")
        if _key_id(name, raw[1:]) != key_id:
            raise NoteError("verifier key hash does not match the key")
        return cls(name, key_id, raw[1:])

    def __str__(self) -> str:
        return (
            f"{self.name}+{self.key_id:08x}+{base64.b64encode(bytes([ALG_ED25519]) + self.public).decode()}"
        )

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        return cls(name, os.urandom(32))

    @classmethod
    def parse(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signing key must be PRIVATE+KEY+name+hash+key")
        _, _, name, hexid, b64 = parts
        _check_name(name)
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise NoteError("signing key is not valid base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("signing key is not an Ed25519 note key")
        signer = cls(name, raw[1:])
        if f"{signer.verifier.key_id:08x}" != hexid:
            raise NoteError("signing key hash does not match the key")
        return signer

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> Verifier:
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, _key_id(self.name, public), public)

    def __str__(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{raw}"

    def sign(self, text: str) -> str:
        """The signed note: text, blank line, one signature line."""
        _check_text(text)
        sig = self._private.sign(text.encode())
        blob = self.verifier.key_id.to_bytes(4, "big") + sig
        return f"{text}\n{EM_DASH} {self.name} {base64.b64encode(blob).decode()}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text has control characters")


def open_note(note: str, verifiers: list[Verifier]) -> str:
    """The note's text if a known key signed it and no known key's signature fails; else NoteError."""
    if not note.endswith("\n"):
        raise NoteError("note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, sigs = note[: split + 1], note[split + 2 :]
    _check_text(text)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = False
    lines = sigs[:-1].split("\n")
    if not lines or lines == [""]:
        raise NoteError("note has no signatures")
    for line in lines:
        prefix = EM_DASH + " "
        if not line.startswith(prefix):
            raise NoteError("malformed signature line")
        try:
            name, b64 = line[len(prefix) :].split(" ")
            blob = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("malformed signature line") from None
        if len(blob) < 5:
            raise NoteError("malformed signature")
        v = known.get((name, int.from_bytes(blob[:4], "big")))
        if v is None:
            continue
        if not v.verify(text.encode(), blob[4:]):
            raise NoteError(f"signature by {name} does not verify")
        verified = True
    if not verified:
        raise NoteError("note is not signed by a known key")
    return text


def format_checkpoint(origin: str, size: int, root: bytes) -> str:
    """tlog-checkpoint body: origin, decimal size, base64 root hash, each on its own line."""
    if not origin or "\n" in origin:
        raise NoteError("bad origin")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint must have origin, size and root lines")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not size_s.isdigit() or (size_s.startswith("0") and size_s != "0"):
        raise NoteError("checkpoint size is not a decimal number")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error:
        raise NoteError("checkpoint root is not base64") from None
    if len(root) != 32:
        raise NoteError("checkpoint root is not a SHA-256 hash")
    return origin, int(size_s), root
