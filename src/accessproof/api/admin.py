"""Administration (admin role only): API tokens, the signing key, legal holds, purge, schedules, and the
sealed record of every administrative action.

Each change is sealed as an ``admin_action`` ledger entry (``actions.seal_admin_action``) naming who did it;
holds, releases and purges are also the ledger's own ``hold``/``release``/``purge`` records. Nothing here
changes or deletes sealed evidence: a purge removes only payloads past retention and not under hold, and
the ledger keeps verifying (the purge manifest says what went).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from accessproof.api.actions import admin_actions, seal_admin_action
from accessproof.api.auth import ROLES, Principal, create_token, list_tokens, require, revoke_token
from accessproof.api.deps import (
    ERROR_RESPONSES,
    Page,
    fail,
    jsonable,
    optional_module,
    parse_time_param,
    rows_page,
    using_store,
)
from accessproof.ledger import LedgerError, open_ledger
from accessproof.ledger import retention as R

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require("admin"))]


# ------------------------------------------------------------------ tokens

class TokenRequest(BaseModel):
    role: str = Field(description=" | ".join(ROLES))
    label: str | None = Field(None, max_length=200)


@router.get("/tokens")
def tokens(request: Request, _: Admin) -> dict[str, Any]:
    """Every token (id, role, label, created, revoked); never a secret."""
    with using_store(request) as store:
        return {"tokens": [jsonable(t) for t in list_tokens(store)]}


@router.post("/tokens", status_code=201)
def new_token(request: Request, body: TokenRequest, principal: Admin) -> dict[str, Any]:
    """Create a token; the response is the only place it is ever shown."""
    if body.role not in ROLES:
        fail(400, "invalid role", f"role must be one of {', '.join(ROLES)}")
    with using_store(request) as store:
        token = create_token(store, body.role, body.label, by=principal.subject)
    return {"id": token[3:].split("_", 1)[0], "role": body.role, "label": body.label, "token": token}


@router.delete("/tokens/{token_id}")
def delete_token(request: Request, token_id: str, principal: Admin) -> dict[str, Any]:
    """Revoke a token at once (its dashboard sessions end too)."""
    with using_store(request) as store:
        if not revoke_token(store, token_id, by=principal.subject):
            fail(404, "not found", f"no live token {token_id!r}")
    return {"id": token_id, "revoked": True}


# ------------------------------------------------------------------ keys

@router.post("/keys", status_code=201)
def init_key(request: Request, principal: Admin) -> dict[str, Any]:
    """Create the ledger signing key (never replacing one) and return the verifier key to keep elsewhere."""
    from accessproof.ledger import init_store

    with using_store(request) as store:
        try:
            led, verifier = init_store(request.app.state.store_url)
        except LedgerError as e:
            fail(409, "key exists", str(e))
        led.close()
        seal_admin_action(store, "key.init", principal.subject, {"verifier_key": str(verifier)})
    return {"verifier_key": str(verifier)}


# ------------------------------------------------------------------ holds and purge

class HoldRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)
    subject: str | None = Field(None, description="Person the records are about.")
    source: str | None = Field(None, description="Source, glob allowed (okta:*).")
    type: str | None = Field(None, description="Record type (raw, event…).")
    start: str | None = Field(None, alias="from", description="Record time from (ISO 8601, inclusive).")
    end: str | None = Field(None, alias="to", description="Record time to (ISO 8601, exclusive).")


class ReleaseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


def _ledger(store: Any) -> Any:
    return open_ledger(store.dir, getattr(store, "con", None))


@router.get("/holds")
def holds(request: Request, _: Admin,
          all: Annotated[bool, Query(description="Include released holds.")] = False) -> dict[str, Any]:
    """Legal holds (rebuilt from the ledger)."""
    with using_store(request) as store:
        found = R.list_holds(_ledger(store), include_released=all)
    return {"holds": [asdict(h) for h in found]}


@router.post("/holds", status_code=201)
def add_hold(request: Request, body: HoldRequest, principal: Admin) -> dict[str, Any]:
    """Put matching records under legal hold: their payloads cannot be purged until it is released."""
    start, end = parse_time_param(body.start, "from"), parse_time_param(body.end, "to")
    with using_store(request) as store:
        try:
            hold = R.add_hold(_ledger(store), reason=body.reason, by=principal.subject, subject=body.subject,
                              source=body.source, record_type=body.type, time_from=start, time_to=end)
        except LedgerError as e:
            fail(400, "invalid hold", str(e))
        seal_admin_action(store, "hold.add", principal.subject, {"hold_id": hold.hold_id, "index": hold.index})
    return asdict(hold)


@router.post("/holds/{hold_id}/release")
def release_hold(request: Request, hold_id: str, body: ReleaseRequest, principal: Admin) -> dict[str, Any]:
    """Release a hold; its records become purgeable once past retention."""
    with using_store(request) as store:
        try:
            index = R.release_hold(_ledger(store), hold_id, reason=body.reason, by=principal.subject)
        except LedgerError as e:
            fail(404, "not found", str(e))
        seal_admin_action(store, "hold.release", principal.subject, {"hold_id": hold_id, "index": index})
    return {"hold_id": hold_id, "released": True, "index": index}


class PurgeRequest(BaseModel):
    dry_run: bool = Field(True, description="List what would go and change nothing (the default).")


@router.post("/purge")
def purge(request: Request, body: PurgeRequest, principal: Admin) -> dict[str, Any]:
    """Delete payloads past retention and not under hold; a manifest is sealed and the ledger keeps
    verifying. Dry run unless ``dry_run`` is false."""
    from accessproof.ledger.api import compact_store

    with using_store(request) as store:
        led = _ledger(store)
        if led.payloads is None:
            fail(409, "ledger", "this store has no payload store")
        try:
            report = R.purge(led, led.payloads, dry_run=body.dry_run, by=principal.subject)
        except LedgerError as e:
            fail(409, "ledger", str(e))
        if not body.dry_run:
            seal_admin_action(store, "purge", principal.subject,
                              {"payloads": len(report.purge), "held": len(report.held),
                               "manifest_index": report.manifest_index})
            if report.purge:
                _compact(store, request.app.state.store_url, compact_store)
    return {"dry_run": body.dry_run, "now": report.now, "purged" if not body.dry_run else "would_purge":
            [r._asdict() for r in report.purge[:1000]], "count": len(report.purge), "held": len(report.held),
            "manifest_index": report.manifest_index}


def _compact(store: Any, url: str, compact_store: Any) -> None:
    """Make purged bytes leave the database files. DuckDB rewrites its file, which needs its connection
    closed: the store is reopened in place, since the scheduler and the dashboard hold this object."""
    if store.dialect != "duckdb":
        compact_store(url)
        return
    store.close()
    try:
        compact_store(store.dir)
    finally:
        type(store).__init__(store, store.dir)


# ------------------------------------------------------------------ the record, and schedules

@router.get("/actions", response_model=Page)
def actions(request: Request, _: Admin, limit: Annotated[int | None, Query()] = None,
            cursor: Annotated[str | None, Query()] = None) -> Page:
    """Every sealed administrative action, oldest first, with its ledger index."""
    return rows_page(request, admin_actions, limit, cursor)


def _scheduler() -> Any:
    module = optional_module("accessproof.server.scheduler")
    if module is None:
        fail(404, "not available", "scheduling is not part of this server")
    return module


class ScheduleRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(description="assessment or walkthrough")
    cron: str = Field(description="crontab expression, e.g. '0 2 * * *'")
    timezone: str = "UTC"
    select: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    grace_seconds: int = Field(900, ge=0)
    replace: bool = False


@router.get("/schedules")
def schedules(request: Request, _: Admin) -> dict[str, Any]:
    """Cron-style schedules of assessments and walkthroughs, and their recent runs (missed ones too)."""
    sched = _scheduler()
    with using_store(request) as store:
        return {"schedules": [jsonable(s.as_dict()) for s in sched.list_schedules(store)],
                "runs": [jsonable(r) for r in sched.schedule_runs(store, limit=100)]}


@router.post("/schedules", status_code=201)
def add_schedule(request: Request, body: ScheduleRequest, principal: Admin) -> dict[str, Any]:
    """Add (or, with ``replace``, replace) a schedule; sealed as an administrative action."""
    sched = _scheduler()
    s = sched.Schedule(body.name, body.kind, body.cron, body.timezone, body.select, body.params, body.grace_seconds)
    with using_store(request) as store:
        try:
            done = sched.add_schedule(store, s, by=principal.subject, replace=body.replace)
        except sched.ScheduleError as e:
            fail(400, "invalid schedule", str(e))
    return jsonable(done.as_dict())


@router.delete("/schedules/{name}")
def remove_schedule(request: Request, name: str, principal: Admin) -> dict[str, Any]:
    """Remove a schedule (its run history stays); sealed as an administrative action."""
    sched = _scheduler()
    with using_store(request) as store:
        if not sched.remove_schedule(store, name, by=principal.subject):
            fail(404, "not found", f"no schedule {name!r}")
    return {"name": name, "removed": True}
