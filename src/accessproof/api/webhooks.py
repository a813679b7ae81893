"""Webhooks into the one ingest path: Okta Event Hooks and a generic HMAC-signed hook for QMS/ITSM systems.

``/hooks/okta`` — Okta Event Hooks. The one-time verification is a GET carrying
``x-okta-verification-challenge``, answered with ``{"verification": <value>}``; deliveries are POSTs of
``{"data": {"events": [<System Log event>, …]}}``. Okta signs nothing: it sends the secret configured on
the hook as the ``Authorization`` header, compared here in constant time with ``okta_hook_secret``.

``/hooks/{source_type}`` — any source type (e.g. ``servicenow`` from an outbound REST message), body as
for ``POST /api/v1/ingest``. The sender signs ``<unix seconds>.<body>`` with HMAC-SHA256 under the
source type's shared secret and sends ``Accessproof-Signature: t=<unix seconds>,v1=<hex>`` (the shape of
accessproof's own outgoing events), optionally ``Accessproof-Delivery: <id>``. A signature that does not
match (forged), one whose time is outside the tolerance (stale), or one already used (replayed — every
signature is remembered in ``webhook_deliveries`` for the window) gets 401, and the refusal is recorded
there too, with the reason and the sender's address.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, BackgroundTasks, Header, Request
from starlette.concurrency import run_in_threadpool

from accessproof.api import intake
from accessproof.api.deps import ERROR_RESPONSES, fail, using_store
from accessproof.api.ingest import IngestResult
from accessproof.sources.base import Chunk
from accessproof.store.base import Store

router = APIRouter(prefix="/hooks", tags=["webhooks"], responses={
    **ERROR_RESPONSES, 413: {"description": "Body over the configured limit"}})

SIGNATURE_HEADER = "Accessproof-Signature"
DELIVERY_HEADER = "Accessproof-Delivery"
DELIVERY_TABLE = """CREATE TABLE IF NOT EXISTS webhook_deliveries (
  received TIMESTAMPTZ NOT NULL, hook VARCHAR NOT NULL, signature VARCHAR, delivery VARCHAR,
  outcome VARCHAR NOT NULL, reason VARCHAR, remote VARCHAR, run_id VARCHAR)"""
DELIVERY_INDEX = "CREATE INDEX IF NOT EXISTS webhook_deliveries_signature ON webhook_deliveries (signature)"


def ensure_table(store: Store) -> None:
    store.execute(DELIVERY_TABLE)
    store.execute(DELIVERY_INDEX)


def record(store: Store, hook: str, outcome: str, reason: str | None, *, signature: str | None = None,
           delivery: str | None = None, remote: str | None = None, run_id: str | None = None) -> None:
    """One line in ``webhook_deliveries`` (the table is made when the app starts)."""
    store.execute("INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [datetime.now(UTC), hook, signature, delivery, outcome, reason, remote, run_id])


def _remote(request: Request) -> str | None:
    return request.client.host if request.client else None


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a sender puts in ``Accessproof-Signature``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def parse_signature(header: str | None) -> tuple[int, list[str]] | None:
    """(timestamp, v1 MACs) of a signature header, or None when it is absent or malformed."""
    if not header:
        return None
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        k, eq, v = item.strip().partition("=")
        if eq:
            parts.setdefault(k, []).append(v.strip())
    try:
        return int(parts["t"][0]), parts.get("v1", [])
    except (KeyError, ValueError):
        return None


async def _refuse(request: Request, hook: str, reason: str, *, signature: str | None = None,
                  delivery: str | None = None) -> None:
    def write() -> None:
        with using_store(request) as store:
            record(store, hook, "refused", reason, signature=signature, delivery=delivery, remote=_remote(request))

    await run_in_threadpool(write)
    fail(401, "signature refused", reason)


# ------------------------------------------------------------------ Okta Event Hooks

async def _okta_auth(request: Request, authorization: str | None) -> None:
    secret = request.app.state.settings.okta_hook_secret
    if not secret:
        fail(404, "hook not configured", "no okta_hook_secret is configured on this server")
    if not intake.same_secret(authorization, secret):
        def write() -> None:
            with using_store(request) as store:
                record(store, "okta", "refused", "wrong or missing Authorization secret", remote=_remote(request))

        await run_in_threadpool(write)
        fail(401, "unauthenticated", "the Authorization header is not the configured Okta hook secret",
             headers={"WWW-Authenticate": "Bearer"})


@router.get("/okta")
async def okta_verify(
    request: Request,
    challenge: Annotated[str | None, Header(alias="x-okta-verification-challenge")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, str]:
    """Okta's one-time verification: echo the challenge header as ``{"verification": …}``."""
    await _okta_auth(request, authorization)
    if not challenge:
        fail(400, "missing challenge", "no x-okta-verification-challenge header")
    return {"verification": challenge}


@router.post("/okta", response_model=IngestResult)
async def okta_deliver(
    request: Request,
    background: BackgroundTasks,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """An Okta Event Hook delivery: each event in ``data.events`` is one System Log record."""
    await _okta_auth(request, authorization)
    body = await intake.receive(request)
    try:
        body.file.seek(0)
        try:
            doc = orjson.loads(body.file.read())
        except orjson.JSONDecodeError as e:
            fail(400, "malformed body", f"not JSON: {e}")
    finally:
        body.close()
    events = (doc.get("data") or {}).get("events") if isinstance(doc, dict) and isinstance(doc.get("data"), dict) \
        else None
    if not isinstance(events, list):
        fail(400, "malformed body", 'an Okta Event Hook body is {"data": {"events": [...]}}')
    event_id = doc.get("eventId") if isinstance(doc.get("eventId"), str) else None
    delivery_id = intake.delivery_id(event_id if event_id and intake.DELIVERY_ID.match(event_id) else None)
    name = intake.record_file("hook", "okta", delivery_id)

    def chunks(_ing: Any) -> list[Chunk]:
        return [Chunk(orjson.dumps(e), f"{name}#{i}", obj=e) for i, e in enumerate(events)]

    remote = _remote(request)

    def remember(store: Store, outcome: intake.Outcome) -> None:
        record(store, "okta", "ingested", None, delivery=delivery_id, remote=remote, run_id=outcome.summary.run_id)

    outcome = await intake.ingest_locked(request, "okta", chunks, name=name, delivery=delivery_id, after=remember)
    assert isinstance(outcome, intake.Outcome)
    background.add_task(intake.retest_after, request, outcome)
    return outcome.as_dict()


# ------------------------------------------------------------------ HMAC-signed hooks (after /okta: routes match in order)

@router.post("/{source_type}", response_model=IngestResult)
async def signed_hook(
    request: Request,
    source_type: str,
    background: BackgroundTasks,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER,
                                            description="t=<unix seconds>,v1=<hex HMAC-SHA256>")] = None,
    delivery: Annotated[str | None, Header(alias=DELIVERY_HEADER, description="The sender's delivery id.")]
    = None,
) -> dict[str, Any]:
    """A signed delivery of records of ``source_type`` (body as for ``POST /api/v1/ingest``)."""
    intake.check_source(source_type)
    settings = request.app.state.settings
    secret = settings.hook_secret(source_type)
    if secret is None:
        fail(404, "hook not configured", f"no webhook secret is configured for {source_type!r}")
    if source_type in ("csv", "json"):
        fail(400, "mapping required", "mapped sources (csv, json) come in through POST /api/v1/ingest")
    hook = f"hmac:{source_type}"
    parsed = parse_signature(signature)
    if parsed is None:
        await _refuse(request, hook, f"missing or malformed {SIGNATURE_HEADER} header (t=<unix>,v1=<hex>)",
                      delivery=delivery)
    assert parsed is not None
    stamp, macs = parsed
    if abs(time.time() - stamp) > settings.hook_tolerance_seconds:
        await _refuse(request, hook, f"stale signature: its time is {int(time.time() - stamp)} s from now "
                                     f"(tolerance {settings.hook_tolerance_seconds} s)",
                      signature=(macs or [None])[0], delivery=delivery)
    delivery_id = intake.delivery_id(delivery)
    mac = hmac.new(secret.encode(), f"{stamp}.".encode(), hashlib.sha256)
    body = await intake.receive(request, mac=mac)
    try:
        expected = body.mac.hexdigest()
        good = next((m for m in macs if hmac.compare_digest(expected, m)), None)
        if good is None:
            await _refuse(request, hook, "forged signature: no v1 MAC matches the body", delivery=delivery_id)
        assert good is not None
        window = timedelta(seconds=2 * settings.hook_tolerance_seconds)
        remote = _remote(request)

        def not_replayed(store: Store) -> str | None:
            """A signature already used inside the window is a replay (refused and recorded)."""
            seen = store.query("SELECT 1 FROM webhook_deliveries WHERE signature = ? AND outcome = 'ingested' "
                               "AND received > ? LIMIT 1", [good, datetime.now(UTC) - window])
            if not seen:
                return None
            reason = "replayed signature: this delivery was already received"
            record(store, hook, "refused", reason, signature=good, delivery=delivery_id, remote=remote)
            return reason

        def remember(store: Store, outcome: intake.Outcome) -> None:
            record(store, hook, "ingested", None, signature=good, delivery=delivery_id, remote=remote,
                   run_id=outcome.summary.run_id)

        if not intake.has_content(body):
            fail(400, "empty body", "the body holds no records")
        name = intake.record_file("hook", source_type, delivery_id)
        outcome = await intake.ingest_locked(request, source_type, lambda ing: intake.file_chunks(ing, body, name),
                                             name=name, delivery=delivery_id, guard=not_replayed, after=remember)
    finally:
        body.close()
    if isinstance(outcome, str):
        fail(401, "signature refused", outcome)
    background.add_task(intake.retest_after, request, outcome)
    return outcome.as_dict()
