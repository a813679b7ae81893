"""POST /api/v1/ingest: the CLI's accounting through HTTP, bad bodies refused with the reason."""

from __future__ import annotations

import gzip
import uuid

import orjson
import pytest
from fastapi.testclient import TestClient

from accessproof.api.app import create_app
from tests.api.conftest import auth, make_settings, served_store
from tests.conftest import dev_data


@pytest.fixture
def fresh(backend):
    """A client over an empty store (with a key and tokens), body limit 4 MiB, once per backend."""
    location = backend(f"fresh-{uuid.uuid4().hex[:8]}")
    tokens = served_store(location, samples=False)
    with TestClient(create_app(location, settings=make_settings())) as client:
        yield client, tokens


def _post(client, token, source_type, body: bytes, **kw):
    return client.post(f"/api/v1/ingest/{source_type}", content=body, headers={**auth(token), **kw.pop("headers", {})},
                       **kw)


def test_real_samples_through_the_api_are_accounted_like_the_cli(fresh):
    client, tokens = fresh
    totals = dict.fromkeys(("read", "accepted", "duplicate", "quarantined"), 0)
    for source_type in ("cloudtrail", "okta", "entra", "github"):
        for f in sorted(p for p in (dev_data() / source_type).rglob("*") if p.is_file()):
            r = _post(client, tokens["ingest"], source_type, f.read_bytes())
            assert r.status_code == 200, (f, r.text)
            body = r.json()
            assert body["read"] == body["accepted"] + body["duplicate"] + body["quarantined"]
            assert len(body["quarantine"]) == body["quarantined"]
            for k in totals:
                totals[k] += body[k]
    assert totals == {"read": 943, "accepted": 934, "duplicate": 0, "quarantined": 9}


def test_quarantined_records_come_back_with_position_and_reason(fresh):
    client, tokens = fresh
    good = (dev_data() / "okta" / "panther-tests.jsonl").read_bytes().splitlines()[:2]
    body = good[0] + b'\n{"eventType": "user.session.start", "published": \n[1, 2]\n' + good[1] + b"\n"
    r = _post(client, tokens["ingest"], "okta", body, headers={"Idempotency-Key": "batch-7"})
    assert r.status_code == 200
    out = r.json()
    assert (out["read"], out["accepted"], out["quarantined"]) == (4, 2, 2)
    positions = {q["position"].rsplit("/", 1)[0] + ":" + q["position"].rsplit(":", 1)[1]: q["reason"]
                 for q in out["quarantine"]}
    assert set(positions) == {"api/okta/batch-7:2", "api/okta/batch-7:3"}
    assert "malformed JSON" in positions["api/okta/batch-7:2"]
    assert "not an object" in positions["api/okta/batch-7:3"]
    again = _post(client, tokens["ingest"], "okta", body).json()
    assert (again["accepted"], again["duplicate"]) == (0, 2)


def test_gzip_body_is_read_like_a_gz_file(fresh):
    client, tokens = fresh
    raw = (dev_data() / "github" / "panther-tests.jsonl").read_bytes()
    r = _post(client, tokens["ingest"], "github", gzip.compress(raw), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["read"] == 92


def test_bad_requests_get_the_reason(fresh):
    client, tokens = fresh
    t = tokens["ingest"]
    r = _post(client, t, "syslog", b"{}\n")
    assert r.status_code == 404 and "unknown source type" in r.json()["detail"] and "okta" in r.json()["detail"]
    r = _post(client, t, "okta", b"  \n\n")
    assert r.status_code == 400 and r.json()["error"] == "empty body"
    whole = gzip.compress(b"".join(b'{"n": %d}\n' % (i * 7919 % 100003) for i in range(5000)))
    r = _post(client, t, "okta", whole[: len(whole) // 2], headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["detail"]
    r = _post(client, t, "okta", b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = _post(client, t, "csv", b"a,b\n1,2\n")
    assert r.status_code == 400 and "qms_exceptions" in r.json()["detail"]
    r = _post(client, t, "okta", b"{}\n", headers={"Idempotency-Key": "../../etc/passwd"})
    assert r.status_code == 400 and r.json()["error"] == "invalid delivery id"
    for r in (_post(client, t, "okta", b"{}", params={"limit": "x"}),):
        assert "Traceback" not in r.text


def test_oversized_body_is_413_while_streaming(fresh):
    client, tokens = fresh
    limit = client.app.state.settings.max_body_bytes
    line = b'{"eventType": "user.session.start", "published": "2024-01-01T00:00:00Z"}\n'
    big = line * (limit // len(line) + 10)
    r = _post(client, tokens["ingest"], "okta", big)
    assert r.status_code == 413 and r.json()["error"] == "body too large"

    def chunked():  # no Content-Length: refused once the streamed bytes cross the limit
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    r = _post(client, tokens["ingest"], "okta", chunked())
    assert r.status_code == 413
    bomb = gzip.compress(b"\n" * (limit + 1))
    assert len(bomb) < limit
    r = _post(client, tokens["ingest"], "okta", bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413 and "inflated" in r.json()["detail"]
    with client.app.state.store_lock:
        runs = client.app.state.store.query("SELECT count(*) FROM ingest_runs")[0][0]
    assert runs == 0


def test_mapped_csv_through_a_bundled_mapping(fresh, tmp_path):
    client, tokens = fresh
    from accessproof.demo.simulate import simulate

    simulate(40, 2, 7, tmp_path / "data")
    csv = (tmp_path / "data" / "qms" / "exceptions.csv").read_bytes()
    r = _post(client, tokens["ingest"], "csv", csv, params={"mapping": "qms_exceptions"},
              headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["read"] == len(csv.strip().splitlines()) - 1 and out["accepted"] == out["read"]
    assert orjson.loads(orjson.dumps(out))["source_type"] == "csv"
