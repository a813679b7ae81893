"""The CloudTrail bulk path (bytes-recognised noise normalised in SQL) must equal the Python path."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pyarrow as pa

from accessproof.ingest import ingest_paths
from accessproof.sources.cloudtrail import SOURCE
from accessproof.store import open_store
from accessproof.synthetic import cloudtrail_events, write_jsonl

bulk_accepts = SOURCE.bulk_accepts

REPO = Path(__file__).resolve().parents[2]
DEV = REPO.parent / "shared" / "data" / "dev"
if not DEV.exists():
    DEV = REPO / "data" / "samples"


def _events(store) -> list[tuple]:
    rows = store.query("SELECT * EXCLUDE (attributes_json), attributes_json FROM events ORDER BY raw_id, event_id")
    return [(*r[:-1], json.loads(r[-1]) if r[-1] else None) for r in rows]


def _raw(store) -> list[tuple]:
    return store.query("SELECT raw_id, source, sha256, record_type, record_time, data, position FROM raw_records "
                       "ORDER BY raw_id")


def _both(tmp_path, paths, **kw):
    bulk = open_store(tmp_path / "bulk")
    plain = open_store(tmp_path / "plain")
    plain.supports_bulk = False
    a = ingest_paths(bulk, "cloudtrail", paths, **kw)
    b = ingest_paths(plain, "cloudtrail", paths, **kw)
    return bulk, plain, a, b


def test_bulk_path_equals_python_path_on_the_real_samples(tmp_path):
    paths = [DEV / "cloudtrail"]
    hits = sum(bulk_accepts(line) for line in (DEV / "cloudtrail" / "panther-tests.jsonl").read_bytes().splitlines())
    assert hits > 0, "no sample record takes the bulk path: the test would prove nothing"
    bulk, plain, a, b = _both(tmp_path, paths)
    assert (a.read, a.accepted, a.duplicate, a.quarantined) == (b.read, b.accepted, b.duplicate, b.quarantined)
    assert _events(bulk) == _events(plain)
    assert _raw(bulk) == _raw(plain)


def test_bulk_path_equals_python_path_on_generated_volume_and_source_name(tmp_path):
    src = tmp_path / "ct.jsonl"
    write_jsonl(cloudtrail_events(3000, seed=5), src)
    assert sum(bulk_accepts(x) for x in src.read_bytes().splitlines()) > 2000
    bulk, plain, a, b = _both(tmp_path, [src], source_name="aws:prod")
    assert a.accepted == b.accepted == 3000
    assert _events(bulk) == _events(plain)
    assert {r[1] for r in _raw(bulk)} == {"aws:prod"}


def test_malformed_noise_is_quarantined_and_reingest_adds_nothing(tmp_path):
    good = orjson.dumps(next(cloudtrail_events(50, seed=9)))
    noise = [orjson.dumps(e) for e in cloudtrail_events(200, seed=3) if e["readOnly"]]
    broken = noise[0][:-1] + b',,}'  # passes the byte checks, fails the JSON parse
    assert bulk_accepts(broken)
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b"\n".join([good, *noise[1:], broken]) + b"\n")
    store = open_store(tmp_path / "s")
    first = ingest_paths(store, "cloudtrail", [p])
    assert first.read == len(noise) + 1 and first.quarantined == 1
    assert first.accepted == len(noise)
    (qid, reason, position), = store.query("SELECT quarantine_id, reason, position FROM quarantine")
    # the per-record path gives the reason, as it would had the recogniser said no
    assert reason.startswith("malformed JSON: ") and position.endswith(f":{len(noise) + 1}")
    # sealed like every other record: raw records and the quarantined one
    sealed = store.query("SELECT record_type, count(*) FROM ledger_entries GROUP BY ALL ORDER BY 1")
    assert sealed == [("quarantine", 1), ("raw", len(noise))]
    assert store.query("SELECT record_id FROM ledger_entries WHERE record_type = 'quarantine'") == [(qid,)]
    again = ingest_paths(store, "cloudtrail", [p])
    assert again.accepted == 0 and again.duplicate == len(noise) and again.quarantined == 1
    assert store.query("SELECT count(*) FROM quarantine")[0][0] == 1


def _tricky_noise() -> list[bytes]:
    """Read-only noise altered in the ways the bulk SQL could read differently from the Python path."""
    base = orjson.dumps(next(e for e in cloudtrail_events(50, seed=4) if e["readOnly"]))
    assert bulk_accepts(base)

    def swap(old: bytes, new: bytes) -> bytes:
        assert old in base
        return base.replace(old, new, 1)

    src = b'"eventSource":"'
    return [
        base,
        swap(src, src + b"  "),  # spaces around a value: trimmed by both
        swap(src, src + b"\\t"),  # an escaped tab: Python strips it, DuckDB's trim would not
        swap(src, src + b"\\u00a0"),  # a no-break space: the same
        swap(src, src + b"\xc2\xa0"),  # the same as raw UTF-8
        swap(src, src + b"\\n\\r"),
        swap(b'"awsRegion":"', b'"awsRegion":7,"x":"'),  # a number where a string belongs
        swap(b'"userAgent":"', b'"userAgent":true,"x":"'),
        swap(b'"sourceIPAddress":"', b'"sourceIPAddress":{"a":1},"x":"'),
        b"[" + base + b"]",  # an array holding the record
        base + b"\r",
        swap(b'"eventID":"', b'"eventID":"HIDDEN_DUE_TO_SECURITY_REASONS","x":"'),
        swap(src, src + b"\\\"q\\\\"),  # escaped quote and backslash stay in the value
        # a key given twice: orjson keeps the last value, DuckDB's JSON functions the first
        swap(b'"readOnly":true', b'"readOnly":true,"eventName":"CreateUser"'),
        swap(b'"awsRegion":"', b'"awsRegion":"xx-north-9","awsRegion":"'),
        # no eventID of its own (one nested): the record's SHA-256 stands in for it on both paths
        swap(b'"eventID":"', b'"requestParameters":{"eventID":"00000000-0000-0000-0000-000000000000"},"eventId":"')
        .replace(b'"requestParameters":null,', b"", 1),
    ]


def test_block_recogniser_equals_the_record_recogniser():
    lines = [*_tricky_noise()]
    for path in sorted((DEV / "cloudtrail").rglob("*.jsonl")):
        lines += path.read_bytes().splitlines()
    lines += [orjson.dumps(e) for e in cloudtrail_events(2000, seed=8)]
    mask = bulk_accepts.mask(pa.array(lines, pa.binary())).to_pylist()
    assert mask == [bulk_accepts(line) for line in lines]
    assert 1500 < sum(mask) < len(lines)  # both kinds are there


def test_bulk_path_equals_python_path_on_tricky_noise(tmp_path):
    tricky = _tricky_noise()
    assert sum(map(bulk_accepts, tricky)) >= 3  # some of it still takes the bulk path
    src = tmp_path / "tricky.jsonl"
    src.write_bytes(b"\n".join(tricky) + b"\n")
    bulk, plain, a, b = _both(tmp_path, [src])
    assert (a.read, a.accepted, a.duplicate, a.quarantined) == (b.read, b.accepted, b.duplicate, b.quarantined)
    assert _events(bulk) == _events(plain)
    assert _raw(bulk) == _raw(plain)
