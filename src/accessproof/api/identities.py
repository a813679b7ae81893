"""People, their accounts, their lifecycle and their access; links between approvals and what executed them.

Thin over ``identity.resolve``, ``linking.timeline``, ``linking.access`` and ``linking.link`` — the functions
``accessproof identity|timeline|access|link`` print. A person is named by HR id, email, username or account
name, as on the command line. Resolution and linking run on first use if the store has not been linked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from accessproof.api.auth import READERS, require
from accessproof.api.deps import (
    ERROR_RESPONSES,
    Page,
    fail,
    jsonable,
    offset_page,
    parse_time_param,
    rows_page,
    using_store,
)
from accessproof.identity import resolve
from accessproof.linking import link as L
from accessproof.linking.access import access_at
from accessproof.linking.timeline import timeline
from accessproof.store.base import Store

router = APIRouter(prefix="/api/v1", tags=["identities"], responses=ERROR_RESPONSES,
                   dependencies=[Depends(require(*READERS))])
Limit = Annotated[int | None, Query(description="Rows per page.")]
Cursor = Annotated[str | None, Query(description="The 'next' link's cursor.")]
PERSON_COLUMNS = ("person_id", "display_name", "email", "worker_type", "supplier_id", "manager_id", "business_unit",
                  "title", "hired", "terminated", "system")


def _person_id(store: Store, handle: str) -> str:
    found = resolve.person_of(store, handle)
    if found is None:
        fail(404, "not found", f"no single person matches {handle!r}")
    return found["person_id"]


@router.get("/persons", response_model=Page)
def list_persons(request: Request, q: Annotated[str | None, Query(description="Id, name or email (substring).")]
                 = None, limit: Limit = None, cursor: Cursor = None) -> Page:
    """People known from HR records (after identity resolution), by id."""
    with using_store(request) as store:
        resolve.list_identities(store, limit=1)  # resolves identities on first use
        sql = f"SELECT {', '.join(PERSON_COLUMNS)} FROM persons_current"
        params: list[Any] = []
        if q:
            sql += " WHERE person_id ILIKE ? OR display_name ILIKE ? OR email ILIKE ?"
            params = [f"%{q}%"] * 3
        rows = store.query_dicts(sql + " ORDER BY person_id", params)
    return offset_page(request, rows, limit, cursor)


@router.get("/persons/{person}")
def get_person(request: Request, person: str) -> dict[str, Any]:
    """One person and every account mapped to them, with the basis of each match."""
    with using_store(request) as store:
        pid = _person_id(store, person)
        rows = store.query_dicts(f"SELECT {', '.join(PERSON_COLUMNS)} FROM persons_current WHERE person_id = ?",
                                 [pid])
        accounts = resolve.list_identities(store, person=pid)
    return {"person": jsonable(rows[0]) if rows else {"person_id": pid},
            "accounts": [jsonable(a) for a in accounts]}


@router.get("/persons/{person}/timeline")
def person_timeline(request: Request, person: str) -> dict[str, Any]:
    """The person's lifecycle across systems, oldest first, each step with its evidence and link basis."""
    with using_store(request) as store:
        steps = timeline(store, person)
    if not steps:
        fail(404, "not found", f"no person matches {person!r} (or nothing is known about them)")
    return {"person_id": steps[0]["person_id"], "steps": steps}


@router.get("/access", response_model=Page)
def access(request: Request,
           at: Annotated[str, Query(description="Point in time (ISO 8601, UTC if no offset).")],
           person: Annotated[str | None, Query(description="Person id, email or username.")] = None,
           system: Annotated[str | None, Query(description="System, e.g. okta or okta:acme.")] = None,
           limit: Limit = None, cursor: Cursor = None) -> Page:
    """Who held what, in which system, at a point in time."""
    when = parse_time_param(at, "at")
    with using_store(request) as store:
        pid = _person_id(store, person) if person else None
        rows = access_at(store, when, pid, system=system)
    return offset_page(request, rows, limit, cursor)


@router.get("/accounts", response_model=Page)
def accounts(request: Request, system: str | None = None, person: str | None = None,
             status: Annotated[str | None, Query(description="resolved, orphan, conflict, owned, ownerless…")]
             = None, kind: Annotated[str | None, Query(description="human or service")] = None,
             limit: Limit = None, cursor: Cursor = None) -> Page:
    """Accounts with the person each maps to, the rule's basis and confidence."""
    return rows_page(request, lambda store: resolve.list_identities(
        store, system=system, person=person, status=status, kind=kind), limit, cursor)


@router.get("/accounts/orphans", response_model=Page)
def orphan_accounts(request: Request, limit: Limit = None, cursor: Cursor = None) -> Page:
    """Human accounts that map to no current person."""
    return rows_page(request, resolve.orphans, limit, cursor)


@router.get("/accounts/ownerless", response_model=Page)
def ownerless_accounts(request: Request, limit: Limit = None, cursor: Cursor = None) -> Page:
    """Service accounts without an accountable current owner."""
    return rows_page(request, resolve.ownerless_service_accounts, limit, cursor)


@router.get("/accounts/conflicts", response_model=Page)
def account_conflicts(request: Request, limit: Limit = None, cursor: Cursor = None) -> Page:
    """Accounts matching more than one person, with every candidate."""
    return rows_page(request, resolve.conflicts, limit, cursor)


@router.get("/links", response_model=Page)
def links(request: Request, person: str | None = None,
          record: Annotated[str | None, Query(description="Governance record id (RITM…).")] = None,
          event: Annotated[str | None, Query(description="Event id.")] = None,
          basis: Annotated[str | None, Query(description="explicit or inferred")] = None,
          status: str | None = None, limit: Limit = None, cursor: Cursor = None) -> Page:
    """Links between enforcement events and governance records, with basis, rule and evidence ids."""
    return rows_page(request, lambda store: L.links(
        store, event_id=event, record_id=record, person=person, basis=basis, status=status), limit, cursor)


@router.get("/links/unlinked", response_model=Page)
def unlinked(request: Request, limit: Limit = None, cursor: Cursor = None) -> Page:
    """Grants with no justified link, and why."""
    return rows_page(request, L.unlinked_grants, limit, cursor)


@router.get("/links/unexecuted", response_model=Page)
def unexecuted(request: Request, awaiting: Annotated[bool, Query(
        description="Include those still inside their window.")] = False,
        limit: Limit = None, cursor: Cursor = None) -> Page:
    """Approved requests with no event executing them."""
    return rows_page(request, lambda store: L.unexecuted_approvals(store, include_awaiting=awaiting), limit,
                     cursor)


@router.get("/links/removals", response_model=Page)
def removals(request: Request, person: str | None = None,
             missing: Annotated[bool, Query(description="Only removals that never came.")] = False,
             by_system: Annotated[bool, Query(description="One row per trigger and system.")] = False,
             limit: Limit = None, cursor: Cursor = None) -> Page:
    """Removals required by terminations, contract ends, end dates, revoke decisions and exception expiries."""
    with using_store(request) as store:
        if by_system:
            rows = [r for r in L.removal_latency(store) if (not person or r["person_id"] == person)
                    and (not missing or r["status"] == "missing")]
        else:
            rows = L.removal_links(store, status="missing" if missing else None, person=person)
    return offset_page(request, rows, limit, cursor)
