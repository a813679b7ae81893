"""The role matrix, request by request: every endpoint of the app × every role × no token.

The endpoint list is read from the app's routes, and the test fails if a route has no row here (a new
endpoint cannot be forgotten) or a row names a route that no longer exists. Each row says who may call it
and builds a real request (real ids from the store), so an allowed call must succeed, not merely pass the
role check; a refused one must be 401 without credentials and 403 with a role that may not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from fastapi.routing import iter_route_contexts

from accessproof.api.auth import ROLES, create_token
from accessproof.api.webhooks import sign
from tests.api.conftest import HOOK_SECRET, OKTA_SECRET, auth
from tests.conftest import dev_data

READERS = {"analyst", "auditor", "admin"}
ANALYSTS = {"analyst", "admin"}
ADMIN = {"admin"}
INGEST = {"ingest", "admin"}
EVERYONE = set(ROLES)
PUBLIC = "public"
HOOK = "hook"  # authenticated by the webhook's own secret or signature, never by an API token


@dataclass
class Spec:
    allowed: set[str] | str
    request: Callable[[Any], tuple[str, dict[str, Any]]]  # ids -> (url, httpx keyword arguments)
    ok: int = 200


def get(url: str) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    return lambda ids: (url.format(**ids), {})


def body(url: str, payload: Any) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    return lambda ids: (url.format(**ids), {"json": payload(ids) if callable(payload) else payload})


OKTA_LINES = (dev_data() / "okta" / "panther-tests.jsonl").read_bytes()


def _fresh_token(client) -> str:
    with client.app.state.store_lock:
        token = create_token(client.app.state.store, "auditor", "to be revoked")
    return token[3:].split("_", 1)[0]


SPECS: dict[tuple[str, str], Spec] = {
    ("GET", "/openapi.json"): Spec(PUBLIC, get("/openapi.json")),
    ("GET", "/docs"): Spec(PUBLIC, get("/docs")),
    ("GET", "/docs/oauth2-redirect"): Spec(PUBLIC, get("/docs/oauth2-redirect")),
    ("GET", "/healthz"): Spec(PUBLIC, get("/healthz")),
    ("GET", "/api/v1/whoami"): Spec(EVERYONE, get("/api/v1/whoami")),
    ("POST", "/api/v1/ingest/{source_type}"): Spec(INGEST, lambda ids: ("/api/v1/ingest/okta", {"content": OKTA_LINES})),
    ("GET", "/api/v1/events"): Spec(READERS, get("/api/v1/events?limit=5&source=okta")),
    ("GET", "/api/v1/events/{raw_id}"): Spec(READERS, get("/api/v1/events/{raw_id}")),
    ("GET", "/api/v1/sources"): Spec(READERS, get("/api/v1/sources")),
    ("GET", "/api/v1/quarantine"): Spec(READERS, get("/api/v1/quarantine")),
    ("GET", "/api/v1/persons"): Spec(READERS, get("/api/v1/persons?limit=3")),
    ("GET", "/api/v1/persons/{person}"): Spec(READERS, get("/api/v1/persons/{person}")),
    ("GET", "/api/v1/persons/{person}/timeline"): Spec(READERS, get("/api/v1/persons/{person}/timeline")),
    ("GET", "/api/v1/access"): Spec(READERS, get("/api/v1/access?at=2026-02-01T00:00:00Z&limit=5")),
    ("GET", "/api/v1/accounts"): Spec(READERS, get("/api/v1/accounts?limit=5")),
    ("GET", "/api/v1/accounts/orphans"): Spec(READERS, get("/api/v1/accounts/orphans")),
    ("GET", "/api/v1/accounts/ownerless"): Spec(READERS, get("/api/v1/accounts/ownerless")),
    ("GET", "/api/v1/accounts/conflicts"): Spec(READERS, get("/api/v1/accounts/conflicts")),
    ("GET", "/api/v1/links"): Spec(READERS, get("/api/v1/links?limit=5")),
    ("GET", "/api/v1/links/unlinked"): Spec(READERS, get("/api/v1/links/unlinked")),
    ("GET", "/api/v1/links/unexecuted"): Spec(READERS, get("/api/v1/links/unexecuted")),
    ("GET", "/api/v1/links/removals"): Spec(READERS, get("/api/v1/links/removals")),
    ("GET", "/api/v1/controls"): Spec(READERS, get("/api/v1/controls")),
    ("GET", "/api/v1/controls/{control_id}"): Spec(READERS, get("/api/v1/controls/{control_id}")),
    ("GET", "/api/v1/runs/{run_id}/results"): Spec(READERS, get("/api/v1/runs/{run_id}/results")),
    ("GET", "/api/v1/findings"): Spec(READERS, get("/api/v1/findings?state=open")),
    ("GET", "/api/v1/findings/{finding_id}"): Spec(READERS, get("/api/v1/findings/{finding_id}")),
    ("POST", "/api/v1/assessments"): Spec(ANALYSTS, body("/api/v1/assessments", {"select": ["orphan_account"]})),
    ("GET", "/api/v1/assessments/{assessment_id}"): Spec(READERS, get("/api/v1/assessments/{assessment_id}")),
    ("GET", "/api/v1/matrix"): Spec(READERS, get("/api/v1/matrix?format=csv")),
    ("GET", "/api/v1/evidence"): Spec(READERS, get("/api/v1/evidence?limit=5")),
    ("GET", "/api/v1/evidence/{index}"): Spec(READERS, get("/api/v1/evidence/3")),
    ("POST", "/api/v1/samples"): Spec(READERS, body("/api/v1/samples", lambda ids: {
        "control": ids["control_id"], "from": "2026-01-01", "to": "2026-03-01", "seed": 7})),
    ("POST", "/api/v1/walkthroughs"): Spec(ANALYSTS, body("/api/v1/walkthroughs", {
        "seed": 7, "scenarios": ["emergency_exception"]})),
    ("GET", "/api/v1/walkthroughs"): Spec(READERS, get("/api/v1/walkthroughs")),
    ("GET", "/api/v1/packages"): Spec(READERS, get("/api/v1/packages")),
    ("POST", "/api/v1/packages"): Spec(READERS, body("/api/v1/packages", lambda ids: {"control": ids["control_id"]})),
    ("GET", "/api/v1/packages/{package_id}"): Spec(READERS, get("/api/v1/packages/{package_id}")),
    ("GET", "/api/v1/packages/{package_id}/zip"): Spec(READERS, get("/api/v1/packages/{package_id}/zip")),
    ("GET", "/api/v1/ledger"): Spec(READERS, get("/api/v1/ledger")),
    ("GET", "/api/v1/ledger/key"): Spec(READERS, get("/api/v1/ledger/key")),
    ("GET", "/api/v1/ledger/checkpoints"): Spec(READERS, get("/api/v1/ledger/checkpoints?limit=2")),
    ("GET", "/api/v1/ledger/checkpoint"): Spec(READERS, get("/api/v1/ledger/checkpoint")),
    ("GET", "/api/v1/ledger/entries/{index}"): Spec(READERS, get("/api/v1/ledger/entries/0")),
    ("GET", "/api/v1/ledger/proof/{index}"): Spec(READERS, get("/api/v1/ledger/proof/1")),
    ("GET", "/api/v1/ledger/consistency"): Spec(READERS, get("/api/v1/ledger/consistency?old=1")),
    ("GET", "/api/v1/admin/tokens"): Spec(ADMIN, get("/api/v1/admin/tokens")),
    ("POST", "/api/v1/admin/tokens"): Spec(ADMIN, body("/api/v1/admin/tokens", {"role": "auditor"}), ok=201),
    ("DELETE", "/api/v1/admin/tokens/{token_id}"): Spec(ADMIN, lambda ids: (
        f"/api/v1/admin/tokens/{_fresh_token(ids['client'])}", {})),
    ("POST", "/api/v1/admin/keys"): Spec(ADMIN, body("/api/v1/admin/keys", None), ok=409),  # the key exists
    ("GET", "/api/v1/admin/holds"): Spec(ADMIN, get("/api/v1/admin/holds?all=true")),
    ("POST", "/api/v1/admin/holds"): Spec(ADMIN, body("/api/v1/admin/holds", {
        "reason": "matter 12", "subject": "nobody@acme.com"}), ok=201),
    ("POST", "/api/v1/admin/holds/{hold_id}/release"): Spec(ADMIN, lambda ids: (
        f"/api/v1/admin/holds/{_hold(ids['client'])}/release", {"json": {"reason": "closed"}})),
    ("POST", "/api/v1/admin/purge"): Spec(ADMIN, body("/api/v1/admin/purge", {"dry_run": True})),
    ("GET", "/api/v1/admin/actions"): Spec(ADMIN, get("/api/v1/admin/actions")),
    ("GET", "/api/v1/admin/schedules"): Spec(ADMIN, get("/api/v1/admin/schedules")),
    ("POST", "/api/v1/admin/schedules"): Spec(ADMIN, body("/api/v1/admin/schedules", {
        "name": "nightly", "kind": "assessment", "cron": "0 2 * * *", "replace": True}), ok=201),
    ("DELETE", "/api/v1/admin/schedules/{name}"): Spec(ADMIN, lambda ids: (
        f"/api/v1/admin/schedules/{_schedule(ids['client'])}", {})),
    ("GET", "/hooks/okta"): Spec(HOOK, lambda ids: ("/hooks/okta", {"headers": {
        "x-okta-verification-challenge": "abc"}})),
    ("POST", "/hooks/okta"): Spec(HOOK, lambda ids: ("/hooks/okta", {"content": orjson.dumps(
        {"data": {"events": [orjson.loads(OKTA_LINES.splitlines()[0])]}})})),
    ("POST", "/hooks/{source_type}"): Spec(HOOK, lambda ids: ("/hooks/github", {"content": (
        dev_data() / "github" / "panther-tests.jsonl").read_bytes()})),
}


def _hold(client) -> str:
    r = client.post("/api/v1/admin/holds", json={"reason": "to release", "source": "okta:*"},
                    headers=auth(client.tokens["admin"]))
    assert r.status_code == 201, r.text
    return r.json()["hold_id"]


def _schedule(client) -> str:
    name = f"s{time.time_ns()}"
    r = client.post("/api/v1/admin/schedules", json={"name": name, "kind": "assessment", "cron": "0 3 * * *"},
                    headers=auth(client.tokens["admin"]))
    assert r.status_code == 201, r.text
    return name


def _routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD":
                out.add((method, route.path))
    return out


@pytest.fixture(scope="module")
def ids(org, org_client) -> dict[str, Any]:
    client = org_client
    client.tokens = org.tokens
    with client.app.state.store_lock:
        s = client.app.state.store
        raw_id = s.query("SELECT raw_id FROM events WHERE source_type = 'okta' LIMIT 1")[0][0]
        person = s.query("SELECT person_id FROM persons_current ORDER BY person_id LIMIT 1")[0][0]
        control_id, finding_id = s.query(
            "SELECT control_id, finding_id FROM findings WHERE state = 'open' ORDER BY control_id LIMIT 1")[0]
        run_id = s.query("SELECT run_id FROM control_runs WHERE control_id = ? AND status = 'completed'",
                         [control_id])[0][0]
    r = client.post("/api/v1/packages", json={"control": control_id}, headers=auth(org.tokens["auditor"]))
    assert r.status_code == 200, r.text
    return {"client": client, "raw_id": raw_id, "person": person, "control_id": control_id,
            "finding_id": finding_id, "run_id": run_id, "assessment_id": org.assessment_id,
            "package_id": r.json()["id"]}


def test_every_route_has_a_row(org_client):
    routes = _routes(org_client.app)
    assert routes - set(SPECS) == set(), "routes without a row in the role matrix"
    assert set(SPECS) - routes == set(), "rows naming routes that do not exist"


@pytest.mark.parametrize("key", sorted(SPECS), ids=lambda k: f"{k[0]} {k[1]}")
def test_role_matrix(key, ids, org):
    client = ids["client"]
    spec = SPECS[key]
    method = key[0]
    for caller in (None, *ROLES):
        url, kw = spec.request(ids)
        headers = dict(kw.pop("headers", {}))
        if caller is not None:
            headers.update(auth(org.tokens[caller]))
        r = client.request(method, url, headers=headers, **kw)
        who = caller or "no token"
        if spec.allowed == PUBLIC:
            expected = 200
        elif spec.allowed == HOOK:
            expected = 401  # an API token is not the hook's secret or signature
        elif caller is None:
            expected = 401
        else:
            expected = spec.ok if caller in spec.allowed else 403
        assert r.status_code == expected, f"{method} {url} as {who}: {r.status_code} {r.text[:300]}"
        if expected in (401, 403) and spec.allowed != PUBLIC:
            assert set(r.json()) == {"error", "detail"}, f"{method} {url} as {who}: error body {r.text[:200]}"
    if spec.allowed == HOOK:
        url, kw = spec.request(ids)
        headers = dict(kw.pop("headers", {}))
        if url.startswith("/hooks/okta"):
            headers["Authorization"] = OKTA_SECRET
        else:
            headers["Accessproof-Signature"] = sign(HOOK_SECRET, kw["content"], int(time.time()))
        r = client.request(method, url, headers=headers, **kw)
        assert r.status_code == 200, f"{method} {url} with the hook's credentials: {r.status_code} {r.text[:300]}"
