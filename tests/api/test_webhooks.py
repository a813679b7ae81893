"""Webhooks: Okta Event Hooks (verification, authorization, delivery) and the HMAC-signed hook —
forged, stale and replayed signatures refused and recorded; accepted ones accounted like any ingest."""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient

from accessproof.api.app import create_app
from accessproof.api.webhooks import sign
from tests.api.conftest import HOOK_SECRET, OKTA_SECRET, make_settings, served_store
from tests.conftest import dev_data


@pytest.fixture(scope="module")
def hooks(backend):
    location = backend("hooks")
    served_store(location, samples=False)
    with TestClient(create_app(location, settings=make_settings())) as client:
        yield client


def _okta_events() -> list[dict]:
    lines = (dev_data() / "okta" / "panther-tests.jsonl").read_bytes().splitlines()
    return [orjson.loads(x) for x in lines if x.strip()]


def _deliveries(client, outcome: str | None = None) -> list[dict]:
    with client.app.state.store_lock:
        rows = client.app.state.store.query_dicts("SELECT * FROM webhook_deliveries ORDER BY received")
    return [r for r in rows if outcome is None or r["outcome"] == outcome]


def test_okta_verification_echoes_the_challenge(hooks):
    r = hooks.get("/hooks/okta", headers={"x-okta-verification-challenge": "X1b2-c3", "Authorization": OKTA_SECRET})
    assert r.status_code == 200 and r.json() == {"verification": "X1b2-c3"}
    r = hooks.get("/hooks/okta", headers={"x-okta-verification-challenge": "X1b2-c3"})
    assert r.status_code == 401
    r = hooks.get("/hooks/okta", headers={"Authorization": OKTA_SECRET})
    assert r.status_code == 400 and "x-okta-verification-challenge" in r.json()["detail"]


def test_okta_delivery_is_ingested_and_accounted(hooks):
    events = _okta_events()
    body = {"eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
            "source": "https://acme.okta.com/api/v1/eventHooks/whk0", "eventId": "b5a188b9-5ece-4636-b041",
            "eventTime": "2024-01-01T00:00:00Z", "contentType": "application/json",
            "data": {"events": [*events, "not an event"]}}
    r = hooks.post("/hooks/okta", content=orjson.dumps(body), headers={"Authorization": OKTA_SECRET,
                                                                       "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["read"] == len(events) + 1
    assert out["read"] == out["accepted"] + out["duplicate"] + out["quarantined"]
    assert out["quarantined"] == 4 and out["accepted"] == 50  # as the CLI reads the same events, plus one
    assert any(q["position"].startswith("hook/okta/b5a188b9-5ece-4636-b041/")
               and q["position"].endswith(f"#{len(events)}") for q in out["quarantine"])
    again = hooks.post("/hooks/okta", content=orjson.dumps(body), headers={"Authorization": OKTA_SECRET}).json()
    # an Okta retry stores nothing twice; its bad events are set aside again, as that attempt's
    assert (again["accepted"], again["duplicate"], again["quarantined"]) == (0, 50, 4)


def test_okta_refuses_wrong_secret_and_malformed_bodies(hooks):
    r = hooks.post("/hooks/okta", content=b'{"data": {"events": []}}', headers={"Authorization": "guess"})
    assert r.status_code == 401
    assert any(d["hook"] == "okta" and d["outcome"] == "refused" for d in _deliveries(hooks))
    for bad in (b"{not json", b'{"data": {"events": {}}}', b"[]"):
        r = hooks.post("/hooks/okta", content=bad, headers={"Authorization": OKTA_SECRET})
        assert r.status_code == 400, bad
        assert r.json()["error"] == "malformed body"


def _signed(client, body: bytes, *, stamp: int | None = None, secret: str = HOOK_SECRET, source: str = "github",
            delivery: str | None = None, header: str | None = None):
    stamp = int(time.time()) if stamp is None else stamp
    headers = {"Accessproof-Signature": header or sign(secret, body, stamp)}
    if delivery:
        headers["Accessproof-Delivery"] = delivery
    return client.post(f"/hooks/{source}", content=body, headers=headers)


def test_signed_delivery_is_accepted_once_and_a_replay_is_refused(hooks):
    body = (dev_data() / "github" / "panther-tests.jsonl").read_bytes()
    stamp = int(time.time())
    r = _signed(hooks, body, stamp=stamp, delivery="sn-0001")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["read"], out["accepted"], out["quarantined"]) == (92, 88, 4)
    assert out["quarantine"][0]["position"].startswith("hook/github/sn-0001/")
    replay = _signed(hooks, body, stamp=stamp, delivery="sn-0001")
    assert replay.status_code == 401 and "replayed" in replay.json()["detail"]
    resent = _signed(hooks, body, stamp=stamp + 1)  # a re-signed retry is fine, and adds nothing
    assert resent.status_code == 200 and resent.json()["accepted"] == 0 and resent.json()["duplicate"] == 88
    refused = [d["reason"] for d in _deliveries(hooks, "refused") if d["hook"] == "hmac:github"]
    assert any("replayed" in r for r in refused)
    ingested = _deliveries(hooks, "ingested")
    assert {d["delivery"] for d in ingested if d["hook"] == "hmac:github"} >= {"sn-0001"}
    assert all(d["run_id"] for d in ingested)


def test_forged_stale_and_missing_signatures_are_refused_and_recorded(hooks):
    body = b'{"action": "org.add_member", "@timestamp": 1700000000000, "actor": "x", "user": "y"}\n'
    before = len(_deliveries(hooks, "refused"))
    cases = {
        "forged": _signed(hooks, body, secret="not-the-secret"),
        "tampered": hooks.post("/hooks/github", content=body + b" ", headers={
            "Accessproof-Signature": sign(HOOK_SECRET, body, int(time.time()))}),
        "stale": _signed(hooks, body, stamp=int(time.time()) - 3600),
        "future": _signed(hooks, body, stamp=int(time.time()) + 3600),
        "missing": hooks.post("/hooks/github", content=body),
        "malformed": _signed(hooks, body, header="v1=abc"),
    }
    for name, r in cases.items():
        assert r.status_code == 401, name
        assert r.json()["error"] == "signature refused", name
    assert "stale" in cases["stale"].json()["detail"] and "forged" in cases["forged"].json()["detail"]
    assert len(_deliveries(hooks, "refused")) == before + len(cases)
    with hooks.app.state.store_lock:
        assert hooks.app.state.store.query("SELECT count(*) FROM events WHERE actor_id = 'x'")[0][0] == 0


def test_hooks_without_a_secret_or_for_unknown_sources(tmp_path):
    served_store(tmp_path / "st", samples=False)
    with TestClient(create_app(str(tmp_path / "st"), settings=make_settings(hook_secrets={"servicenow": "s"},
                                                                            okta_hook_secret=None))) as c:
        assert _signed(c, b"{}", source="github").status_code == 404
        assert _signed(c, b"{}", source="syslog", secret="s").status_code == 404
        assert c.get("/hooks/okta", headers={"x-okta-verification-challenge": "x"}).status_code == 404
