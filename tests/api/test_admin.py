"""Administration through the API: the signing key, tokens, holds and purge — each sealed as an admin
action naming who did it — and a purge that keeps held records, compacts the store and leaves the server
serving and the ledger verifying."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from accessproof.api.app import create_app
from accessproof.api.auth import ROLES, create_token
from accessproof.store import open_store
from tests.api.conftest import auth, make_settings
from tests.conftest import dev_data


@pytest.fixture
def unkeyed(tmp_path):
    """A store with the okta samples (2020–2022: past the 3-year retention of identity logs) and no key."""
    from accessproof.ingest import ingest_paths

    s = open_store(tmp_path / "st")
    try:
        ingest_paths(s, "okta", [dev_data() / "okta"])
        tokens = {role: create_token(s, role, f"t {role}") for role in ROLES}
    finally:
        s.close()
    with TestClient(create_app(str(tmp_path / "st"), settings=make_settings())) as client:
        yield client, tokens


def _actions(client, token) -> list[dict]:
    r = client.get("/api/v1/admin/actions?limit=1000", headers=auth(token))
    assert r.status_code == 200
    return r.json()["items"]


def test_key_init_once_then_checkpoints_are_signed(unkeyed):
    client, tokens = unkeyed
    admin = auth(tokens["admin"])
    assert client.get("/api/v1/ledger/key", headers=admin).status_code == 404
    r = client.post("/api/v1/admin/keys", headers=admin)
    assert r.status_code == 201 and r.json()["verifier_key"].startswith("accessproof.local/")
    again = client.post("/api/v1/admin/keys", headers=admin)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert client.get("/api/v1/ledger/key", headers=admin).text.strip() == r.json()["verifier_key"]
    state = client.get("/api/v1/ledger", headers=admin).json()
    assert state["signed"] and state["latest_checkpoint"]["size"] == state["size"]
    init = [a for a in _actions(client, tokens["admin"]) if a["action"] == "key.init"]
    assert len(init) == 1 and init[0]["by"].startswith("token:")


def test_tokens_through_the_api_and_the_action_log(unkeyed):
    client, tokens = unkeyed
    admin = auth(tokens["admin"])
    made = client.post("/api/v1/admin/tokens", json={"role": "ingest", "label": "okta relay"}, headers=admin)
    assert made.status_code == 201
    token, token_id = made.json()["token"], made.json()["id"]
    listed = client.get("/api/v1/admin/tokens", headers=admin).json()["tokens"]
    assert token_id in {t["id"] for t in listed} and token not in str(listed)
    assert client.get("/api/v1/whoami", headers=auth(token)).json()["role"] == "ingest"
    assert client.delete(f"/api/v1/admin/tokens/{token_id}", headers=admin).status_code == 200
    assert client.get("/api/v1/whoami", headers=auth(token)).status_code == 401
    assert client.delete(f"/api/v1/admin/tokens/{token_id}", headers=admin).status_code == 404
    assert client.post("/api/v1/admin/tokens", json={"role": "root"}, headers=admin).status_code == 400
    log = [(a["action"], a["details"].get("token_id")) for a in _actions(client, tokens["admin"])]
    assert ("token.create", token_id) in log and ("token.revoke", token_id) in log


def test_purge_keeps_held_records_compacts_and_the_server_and_ledger_carry_on(unkeyed):
    from accessproof.ledger import open_ledger, verify_ledger

    client, tokens = unkeyed
    admin = auth(tokens["admin"])
    assert client.post("/api/v1/admin/keys", headers=admin).status_code == 201
    with client.app.state.store_lock:
        day = client.app.state.store.query("SELECT min(time) FROM events WHERE source_type = 'okta'")[0][0]
    hold = client.post("/api/v1/admin/holds", json={"reason": "matter 7", "from": day.date().isoformat(),
                                                    "to": f"{day.date().isoformat()}T23:59:59Z"}, headers=admin)
    assert hold.status_code == 201, hold.text
    dry = client.post("/api/v1/admin/purge", json={"dry_run": True}, headers=admin).json()
    assert dry["count"] > 0 and dry["held"] > 0 and dry["manifest_index"] is None
    assert client.post("/api/v1/admin/purge", json={}, headers=admin).json()["dry_run"] is True  # the default
    done = client.post("/api/v1/admin/purge", json={"dry_run": False}, headers=admin)
    assert done.status_code == 200, done.text
    out = done.json()
    assert out["count"] == dry["count"] and out["manifest_index"] is not None
    assert out["held"] == dry["held"]
    gone = out["purged"][0]["idx"]
    sealed = client.get(f"/api/v1/evidence/{gone}", headers=admin).json()  # served after the compaction
    assert sealed["payload"] is None
    assert client.get("/api/v1/events?limit=3", headers=admin).status_code == 200
    with client.app.state.store_lock:
        s = client.app.state.store
        led = open_ledger(s.dir, s.con)
        report = verify_ledger(led, payloads=led.payloads)
    assert report.ok, report.problems[:5]
    log = [a["action"] for a in _actions(client, tokens["admin"])]
    assert log.count("purge") == 1 and "hold.add" in log  # the dry runs changed nothing and are not actions
    released = client.post(f"/api/v1/admin/holds/{hold.json()['hold_id']}/release", json={"reason": "closed"},
                           headers=admin)
    assert released.status_code == 200
    assert client.post("/api/v1/admin/holds/hold-nosuch/release", json={"reason": "x"}, headers=admin).status_code == 404
    assert "hold.release" in [a["action"] for a in _actions(client, tokens["admin"])]
