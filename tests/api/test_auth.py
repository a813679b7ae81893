"""Tokens and roles: who gets in, who is refused, and that only hashes are kept."""

from __future__ import annotations

import hashlib

from typer.testing import CliRunner

from accessproof.api.auth import ROLES
from accessproof.cli import app as cli
from accessproof.store import open_store
from tests.api.conftest import auth

runner = CliRunner()


def test_no_token_is_401_and_says_how(served):
    client, _, _ = served
    r = client.get("/api/v1/events")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated" and "Bearer" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_wrong_token_and_wrong_scheme_are_401(served):
    client, tokens, _ = served
    forged = tokens["admin"][:-4] + "AAAA"
    for headers in (auth(forged), {"Authorization": "Basic dXNlcjpwdw=="}, auth("ap_nosuch_x")):
        r = client.get("/api/v1/events", headers=headers)
        assert r.status_code == 401, headers


def test_each_role_is_told_who_it_is(served):
    client, tokens, _ = served
    for role in ROLES:
        r = client.get("/api/v1/whoami", headers=auth(tokens[role]))
        assert r.status_code == 200
        assert r.json()["role"] == role and r.json()["via"] == "token"


def test_ingest_role_cannot_read_events_but_readers_can(served):
    client, tokens, _ = served
    assert client.get("/api/v1/events", headers=auth(tokens["ingest"])).status_code == 403
    for role in ("analyst", "auditor", "admin"):
        r = client.get("/api/v1/events", headers=auth(tokens[role]))
        assert r.status_code == 200 and r.json()["items"]


def test_only_the_hash_is_stored(served):
    client, tokens, _ = served
    with client.app.state.store_lock:
        s = client.app.state.store
        rows = s.query("SELECT token_sha256 FROM api_tokens")
        dump = " ".join(str(r) for r in s.query("SELECT * FROM api_tokens"))
    assert hashlib.sha256(tokens["admin"].encode()).hexdigest() in {r[0] for r in rows}
    assert all(t not in dump for t in tokens.values())


def test_cli_token_create_list_revoke_and_each_is_sealed(tmp_path):
    store = str(tmp_path / "st")
    res = runner.invoke(cli, ["token", "create", "--role", "auditor", "--label", "q3 audit", "--store", store])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    assert token.startswith("ap_")
    token_id = token[3:].split("_", 1)[0]
    listed = runner.invoke(cli, ["token", "list", "--store", store])
    assert token_id in listed.stdout and "auditor" in listed.stdout and token not in listed.stdout
    assert runner.invoke(cli, ["token", "revoke", token_id, "--store", store]).exit_code == 0
    again = runner.invoke(cli, ["token", "revoke", token_id, "--store", store])
    assert again.exit_code == 2 and "no live token" in again.output
    bad = runner.invoke(cli, ["token", "create", "--role", "root", "--store", store])
    assert bad.exit_code == 2 and "unknown role" in bad.output and "Traceback" not in bad.output
    from accessproof.api.actions import admin_actions

    s = open_store(store)
    try:
        actions = [(a["action"], a["details"]["token_id"]) for a in admin_actions(s)]
    finally:
        s.close()
    assert actions == [("token.create", token_id), ("token.revoke", token_id)]


def test_revoked_token_is_refused(served):
    client, _, _ = served
    from accessproof.api.auth import create_token, revoke_token

    # the served app holds the store: go through it
    with client.app.state.store_lock:
        s = client.app.state.store
        token = create_token(s, "analyst", "short-lived")
    assert client.get("/api/v1/whoami", headers=auth(token)).status_code == 200
    with client.app.state.store_lock:
        assert revoke_token(client.app.state.store, token[3:].split("_", 1)[0])
    assert client.get("/api/v1/whoami", headers=auth(token)).status_code == 401
