"""What readers get from the API on the demo organisation: pages that walk a whole list exactly once,
filters that filter, evidence that is the sealed bytes, and proofs an auditor can check with the verifier
key alone."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import pytest

from accessproof.ledger.entry import decode_entry
from accessproof.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from accessproof.ledger.note import Verifier, open_note, parse_checkpoint
from tests.api.conftest import auth


@pytest.fixture(scope="module")
def reader(org, org_client):
    headers = auth(org.tokens["auditor"])

    def get(url: str, **params):
        r = org_client.get(url, params=params or None, headers=headers)  # params={} would drop the query
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
        return r.json()

    return get, org_client, headers


def _walk(get, url: str, **params) -> list[dict]:
    items, page = [], get(url, **params)
    for _ in range(10_000):
        items += page["items"]
        if page["next"] is None:
            return items
        page = get(page["next"].split("testserver", 1)[1])
    raise AssertionError(f"{url}: pages never end")


def test_event_pages_walk_every_event_once(reader):
    get, client, _ = reader
    with client.app.state.store_lock:
        total = client.app.state.store.query("SELECT count(*) FROM events WHERE source_type = 'github'")[0][0]
    items = _walk(get, "/api/v1/events", source="github", limit=37)
    keys = [(e["raw_id"], e["event_id"]) for e in items]
    assert len(keys) == total > 37 and len(set(keys)) == total
    times = [e["time"] for e in items if e["time"]]
    assert times == sorted(times, reverse=True)  # newest first, across page boundaries


def test_event_filters(reader):
    get, _, _ = reader
    grants = get("/api/v1/events", action="entitlement.grant", limit=50)["items"]
    assert grants and {e["action"] for e in grants} == {"entitlement.grant"}
    window = get("/api/v1/events", since="2026-01-10", until="2026-01-11T00:00:00Z", limit=200)["items"]
    assert window and all("2026-01-10" <= e["time"] < "2026-01-11" for e in window)
    someone = grants[0]["target_name"] or grants[0]["target_id"]
    mine = get("/api/v1/events", subject=someone[2:-2], limit=200)["items"]
    assert mine and all(someone[2:-2].lower() in " ".join(str(e[k] or "") for k in (
        "actor_id", "actor_name", "target_id", "target_name")).lower() for e in mine)
    assert get("/api/v1/events", subject="%", limit=5)["items"] == []  # a literal %, not a wildcard
    one = get(f"/api/v1/events/{grants[0]['raw_id']}")
    assert one["raw"]["raw_id"] == grants[0]["raw_id"] and one["events"][0]["event_id"] == grants[0]["event_id"]


def test_bad_read_parameters_are_400_or_404_with_the_reason(reader):
    _, client, headers = reader
    cases = [("/api/v1/events?cursor=bm90LW91cnM", 400, "invalid cursor"),
             ("/api/v1/events?since=yesterday", 400, "invalid since"),
             ("/api/v1/events?limit=0", 400, "invalid limit"),
             ("/api/v1/events?limit=abc", 400, "malformed request"),
             ("/api/v1/events/nope", 404, "not found"),
             ("/api/v1/findings?state=closed", 400, "invalid state"),
             ("/api/v1/findings?severity=urgent", 400, "invalid severity"),
             ("/api/v1/persons/nobody@nowhere.example", 404, "not found"),
             ("/api/v1/access?at=soon", 400, "invalid at"),
             ("/api/v1/matrix?format=pdf", 400, "invalid format"),
             ("/api/v1/ledger/proof/99999999", 404, "not found"),
             ("/api/v1/ledger/consistency?old=5&new=2", 400, "invalid sizes"),
             ("/api/v1/packages/../../etc/passwd", 404, None)]
    for url, status, error in cases:
        r = client.get(url, headers=headers)
        assert r.status_code == status, (url, r.text)
        if error:
            assert r.json()["error"] == error, (url, r.json())
            assert "Traceback" not in r.text


def test_findings_filters_and_one_finding(reader):
    get, _, _ = reader
    everything = _walk(get, "/api/v1/findings", limit=10)
    assert everything and len({f["finding_id"] for f in everything}) == len(everything)
    high = get("/api/v1/findings", severity="high", limit=1000)["items"]
    assert {f["severity"] for f in high} <= {"high"}
    assert len(high) == sum(f["severity"] == "high" for f in everything)
    f = next(x for x in everything if x.get("person_id"))
    mine = get("/api/v1/findings", subject=f["person_id"], limit=1000)["items"]
    assert f["finding_id"] in {x["finding_id"] for x in mine}
    one = get(f"/api/v1/findings/{f['finding_id']}")
    assert one["finding_id"] == f["finding_id"] and one["evidence_ids"] == f["evidence_ids"]
    by_control = get("/api/v1/findings", control=f["control_id"], limit=1000)["items"]
    assert by_control and {x["control_id"] for x in by_control} == {f["control_id"]}


def test_person_timeline_and_access(reader):
    get, _, _ = reader
    person = get("/api/v1/persons", limit=1)["items"][0]
    detail = get(f"/api/v1/persons/{person['person_id']}")
    assert detail["person"]["person_id"] == person["person_id"]
    steps = get(f"/api/v1/persons/{person['person_id']}/timeline")["steps"]
    assert steps and [s["time"] for s in steps if s["time"]] == sorted(s["time"] for s in steps if s["time"])
    held = get("/api/v1/access", at="2026-02-15T00:00:00Z", person=person["person_id"], limit=1000)["items"]
    when = datetime.fromisoformat("2026-02-15T00:00:00+00:00")
    for a in held:
        assert a["person_id"] == person["person_id"]
        assert a["granted_at"] is None or datetime.fromisoformat(a["granted_at"]) <= when


def _on_postgres(org) -> bool:
    return org.location.startswith("postgresql://")


def test_sealed_evidence_is_the_raw_bytes_and_its_proof_checks_with_the_key_alone(reader, org):
    get, client, _ = reader
    key = client.get("/api/v1/ledger/key", headers=reader[2]).text.strip()
    verifier = Verifier.parse(key)
    rows = get("/api/v1/evidence", system="okta", limit=3)["items"]
    assert rows and all(r["type"] in ("raw", "quarantine") for r in rows)
    index = rows[0]["index"]
    sealed = get(f"/api/v1/evidence/{index}")
    payload = base64.b64decode(sealed["payload"])
    entry = decode_entry(base64.b64decode(sealed["entry"]))
    assert sealed["payload_state"] == "present"
    with client.app.state.store_lock:
        raw = client.app.state.store.query("SELECT data FROM raw_records WHERE raw_id = ?", [entry.id])[0][0]
    assert payload == bytes(raw)
    assert entry.payload_sha256 == hashlib.sha256(bytes.fromhex(entry.salt) + payload).hexdigest()
    proof = get(f"/api/v1/ledger/proof/{index}")
    _, size, root = parse_checkpoint(open_note(proof["checkpoint"], [verifier]))
    assert size == proof["tree_size"] and base64.b64decode(proof["entry"]) == base64.b64decode(sealed["entry"])
    verify_inclusion(index, size, leaf_hash(base64.b64decode(proof["entry"])),
                     [base64.b64decode(h) for h in proof["inclusion_path"]], root)
    old = get("/api/v1/ledger/checkpoints", limit=1000)["items"][-1]
    c = get("/api/v1/ledger/consistency", old=old["size"], new=size)
    verify_consistency(old["size"], size, base64.b64decode(c["old_root"]), base64.b64decode(c["new_root"]),
                       [base64.b64decode(h) for h in c["consistency_path"]])
    assert base64.b64decode(c["new_root"]) == root


def test_matrix_formats(reader):
    _, client, headers = reader
    csv = client.get("/api/v1/matrix", params={"format": "csv"}, headers=headers)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("framework,")
    xlsx = client.get("/api/v1/matrix", params={"format": "xlsx"}, headers=headers)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    rows = client.get("/api/v1/matrix", headers=headers).json()
    assert rows["rows"] and {"control_id", "requirement_id"} <= set(rows["rows"][0])


def test_matrix_as_oscal(reader, org):
    _, client, headers = reader
    oscal = client.get("/api/v1/matrix", params={"format": "oscal"}, headers=headers)
    assert oscal.status_code == 200 and "assessment-results" in oscal.json()
