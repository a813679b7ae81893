"""Admin only: API tokens, schedules, retention classes and legal holds. Every change goes through the
same library functions as the CLI and the API, and each is sealed in the ledger as an ``admin_action``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from accessproof.api.auth import ROLES, Principal, create_token, list_tokens, revoke_token
from accessproof.api.deps import using_store
from accessproof.web.pages import admin, back, check_csrf, parse_when, render, with_store

router = APIRouter()


def _scheduler() -> Any:
    try:
        from accessproof.server import scheduler
    except ImportError:
        return None
    return scheduler


def _context(store: Any) -> dict[str, Any]:
    from accessproof.ledger import open_ledger
    from accessproof.ledger.retention import list_holds

    sched = _scheduler()
    ledger = open_ledger(store.dir, getattr(store, "con", None))
    return {"tokens": list_tokens(store), "holds": list_holds(ledger, include_released=True),
            "policy": ledger.policy, "schedules": sched.list_schedules(store) if sched else None,
            "runs": sched.schedule_runs(store, limit=15) if sched else []}


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, _: Principal = Depends(admin)) -> HTMLResponse:
    with using_store(request) as store:
        ctx = _context(store)
    return render(request, "admin.html", page="admin", roles=ROLES, **ctx)


@router.post("/admin/tokens")
async def token_create(request: Request, principal: Principal = Depends(admin)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    role, label = str(form.get("role") or ""), str(form.get("label") or "").strip()[:100] or None
    if role not in ROLES:
        return back("/admin", err=f"unknown role {role!r}")
    token = await with_store(request, create_token, role, label, by=principal.subject)
    ctx = await with_store(request, _context)
    # shown once, in this response only: never in a URL, a cookie or a log
    return render(request, "admin.html", page="admin", roles=ROLES, new_token=token, new_role=role, **ctx)


@router.post("/admin/tokens/{token_id}/revoke")
async def token_revoke(request: Request, token_id: str, principal: Principal = Depends(admin)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    done = await with_store(request, revoke_token, token_id, by=principal.subject)
    return back("/admin", msg=f"revoked token {token_id}") if done else back("/admin", err="no such live token")


@router.post("/admin/holds")
async def hold_add(request: Request, principal: Principal = Depends(admin)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    values = {k: (str(form.get(k) or "").strip() or None) for k in ("reason", "subject", "source", "record_type",
                                                                     "time_from", "time_to")}
    t0, e0 = parse_when(values["time_from"], "from")
    t1, e1 = parse_when(values["time_to"], "to")
    if e0 or e1:
        return back("/admin", err=e0 or e1)
    try:
        hold = await with_store(request, _add_hold, principal.subject, values, t0, t1)
    except ValueError as e:
        return back("/admin", err=str(e))
    return back("/admin", msg=f"hold {hold} set and sealed")


def _add_hold(store: Any, by: str, v: dict[str, Any], t0: Any, t1: Any) -> str:
    from accessproof.api.actions import seal_admin_action
    from accessproof.ledger import open_ledger
    from accessproof.ledger.ledger import LedgerError
    from accessproof.ledger.retention import add_hold

    try:
        hold = add_hold(open_ledger(store.dir, getattr(store, "con", None)), reason=v["reason"] or "", by=by,
                        subject=v["subject"], source=v["source"], record_type=v["record_type"], time_from=t0,
                        time_to=t1)
    except LedgerError as e:
        raise ValueError(str(e)) from None
    seal_admin_action(store, "hold.add", by, {"hold_id": hold.hold_id, "reason": hold.reason})
    return hold.hold_id


@router.post("/admin/holds/{hold_id}/release")
async def hold_release(request: Request, hold_id: str, principal: Principal = Depends(admin)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    reason = str(form.get("reason") or "").strip()
    try:
        await with_store(request, _release_hold, principal.subject, hold_id, reason)
    except ValueError as e:
        return back("/admin", err=str(e))
    return back("/admin", msg=f"hold {hold_id} released and sealed")


def _release_hold(store: Any, by: str, hold_id: str, reason: str) -> None:
    from accessproof.api.actions import seal_admin_action
    from accessproof.ledger import open_ledger
    from accessproof.ledger.ledger import LedgerError
    from accessproof.ledger.retention import release_hold

    try:
        release_hold(open_ledger(store.dir, getattr(store, "con", None)), hold_id, reason=reason, by=by)
    except LedgerError as e:
        raise ValueError(str(e)) from None
    seal_admin_action(store, "hold.release", by, {"hold_id": hold_id, "reason": reason})


@router.post("/admin/schedules")
async def schedule_add(request: Request, principal: Principal = Depends(admin)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    sched = _scheduler()
    if sched is None:
        return back("/admin", err="the scheduler is not part of this installation")
    select = [s.strip() for s in str(form.get("select") or "").split(",") if s.strip()]
    schedule = sched.Schedule(name=str(form.get("name") or "").strip(), kind=str(form.get("kind") or "assessment"),
                              cron=str(form.get("cron") or "").strip(),
                              timezone=str(form.get("timezone") or "UTC").strip() or "UTC", select=select)
    try:
        await with_store(request, sched.add_schedule, schedule, by=principal.subject)
    except ValueError as e:
        return back("/admin", err=str(e))
    return back("/admin", msg=f"schedule {schedule.name} added (sealed)")


@router.post("/admin/schedules/{name}/remove")
async def schedule_remove(request: Request, name: str, principal: Principal = Depends(admin)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    sched = _scheduler()
    if sched is None:
        return back("/admin", err="the scheduler is not part of this installation")
    done = await with_store(request, sched.remove_schedule, name, by=principal.subject)
    return back("/admin", msg=f"schedule {name} removed (sealed)") if done else back("/admin", err="no such schedule")
