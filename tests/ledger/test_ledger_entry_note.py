"""Entry canonical form (RFC 8785) and C2SP signed notes (Go sumdb/note known-answer vector)."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785

from accessproof.ledger.entry import (
    MAX_ENTRY_BYTES,
    EntryError,
    decode_entry,
    iso_utc,
    make_entries,
    make_entry,
    payload_matches,
)
from accessproof.ledger.note import (
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    open_note,
    parse_checkpoint,
)

T = datetime(2024, 2, 29, 12, 30, 5, tzinfo=UTC)

# golang.org/x/mod/sumdb/note documentation example (also used by the C2SP signed-note test suites).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_entry_is_rfc8785_canonical() -> None:
    data = make_entry("raw", "r-1", "okta:acme", T, b"payload", "provisioning_logs", subject="ann@x.com")
    obj = json.loads(data)
    assert rfc8785.dumps(obj) == data
    assert set(obj) == {
        "type",
        "id",
        "source",
        "time",
        "sealed",
        "retention",
        "payload_sha256",
        "salt",
        "subject",
    }
    assert obj["time"] == "2024-02-29T12:30:05Z"
    assert len(bytes.fromhex(obj["salt"])) == 16
    assert payload_matches(decode_entry(data), b"payload")
    assert not payload_matches(decode_entry(data), b"payloaD")


def test_batch_path_equals_rfc8785_for_awkward_strings() -> None:
    rnd = random.Random(3)
    alphabet = [chr(i) for i in range(0x80)] + ["é", "€", "\u2028", "😀", "\ufeff", "\x7f", "\ue000"]
    n = 400
    ids = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 20))) for _ in range(n)]
    sources = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 10))) for _ in range(n)]
    subjects = [None if i % 3 else s + "@x" for i, s in enumerate(ids)]
    tz = timezone(timedelta(hours=5, minutes=30))
    times = [
        datetime(2020, 1, 1, tzinfo=tz) + timedelta(microseconds=rnd.randint(0, 10**12)) for _ in range(n)
    ]
    entries = make_entries(
        ["event"] * n, ids, sources, times, [b"p"] * n, ["provisioning_logs"] * n, subjects
    )
    for data, rid, t in zip(entries, ids, times, strict=True):
        obj = json.loads(data)
        assert rfc8785.dumps(obj) == data
        assert obj["id"] == rid and obj["time"] == iso_utc(t) and obj["time"].endswith("Z")
        assert decode_entry(data).id == rid


def test_entry_limits_and_errors() -> None:
    with pytest.raises(EntryError):
        make_entry("raw", "x" * MAX_ENTRY_BYTES, "s", T, b"", "c")
    with pytest.raises(EntryError):
        make_entry("raw", "r", "s", datetime(2024, 1, 1), b"", "c")  # naive time
    with pytest.raises(EntryError):
        make_entry("Bad Type", "r", "s", T, b"", "c")
    with pytest.raises(EntryError):
        decode_entry(b'{"id":"x"}')
    data = make_entry("raw", "r", "s", T, b"", "c")
    with pytest.raises(EntryError):
        decode_entry(data.replace(b'{"id"', b'{ "id"'))  # not canonical


def test_go_note_known_answer() -> None:
    signer = Signer.parse(GO_SKEY)
    assert str(signer) == GO_SKEY
    assert str(signer.verifier) == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE
    verifier = Verifier.parse(GO_VKEY)
    assert open_note(GO_NOTE, [verifier]) == GO_TEXT
    with pytest.raises(NoteError):
        open_note(GO_NOTE.replace("answer", "answers"), [verifier])
    with pytest.raises(NoteError):
        open_note(GO_NOTE, [Signer.generate("PeterNeumann").verifier])  # unknown key: no valid signature


def test_key_strings_and_checkpoint_body() -> None:
    signer = Signer.generate("accessproof.local/abc")
    v = signer.verifier
    name, hexid, b64 = str(v).split("+", 2)
    raw = base64.b64decode(b64)
    assert name == "accessproof.local/abc" and len(hexid) == 8 and raw[0] == 1 and len(raw) == 33
    assert Verifier.parse(str(v)) == v
    assert Signer.parse(str(signer)) == signer
    with pytest.raises(NoteError):
        Verifier.parse(str(v).replace(hexid, "00000000"))
    root = b"\x01" * 32
    body = format_checkpoint("accessproof.local/abc", 42, root)
    assert body == f"accessproof.local/abc\n42\n{base64.b64encode(root).decode()}\n"
    note = signer.sign(body)
    assert note.startswith(body + "\n\u2014 accessproof.local/abc ")
    assert parse_checkpoint(open_note(note, [v])) == ("accessproof.local/abc", 42, root)
