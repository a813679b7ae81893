"""The CloudTrail bulk path (bytes-recognised noise normalised in SQL) must equal the Python path."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

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
    (reason, position), = store.query("SELECT reason, position FROM quarantine")
    assert reason == "malformed JSON" and position.endswith(f":{len(noise) + 1}")
    again = ingest_paths(store, "cloudtrail", [p])
    assert again.accepted == 0 and again.duplicate == len(noise) and again.quarantined == 1
    assert store.query("SELECT count(*) FROM quarantine")[0][0] == 1
