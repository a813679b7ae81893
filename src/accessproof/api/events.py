"""Canonical events: filtered lists (newest first, keyset pages) and one sealed raw record's events.

The filters mean what they mean for ``accessproof events`` (``queries.events``): ``source`` is an
instance or a type, ``subject`` a substring of actor or target id/name, ``since``/``until`` a half-open
time range. Pages follow ``(time, event_id, raw_id)`` so that new ingests never shift a page.
An event's stable id is its ``raw_id`` (the sealed raw record it came from) plus its ``event_id``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from accessproof import queries
from accessproof.api.auth import READERS, require
from accessproof.api.deps import (
    ERROR_RESPONSES,
    Page,
    decode_cursor,
    encode_cursor,
    fail,
    jsonable,
    limit_of,
    next_link,
    offset_page,
    parse_time_param,
    using_store,
)

router = APIRouter(prefix="/api/v1", tags=["events"], responses=ERROR_RESPONSES)
COLUMNS = [*queries.EVENT_LIST_COLUMNS, "source_type", "actor_id", "target_id", "entitlement_name", "raw_id"]
_SORT = "coalesce(time, TIMESTAMPTZ '0001-01-01 00:00:00+00')"


@router.get("/events", response_model=Page, dependencies=[Depends(require(*READERS))])
def list_events(
    request: Request,
    source: Annotated[str | None, Query(description="Source instance or type, e.g. okta or aws:1234.")] = None,
    action: Annotated[str | None, Query(description="Canonical action, e.g. entitlement.grant.")] = None,
    subject: Annotated[str | None, Query(description="Actor or target id/name (substring).")] = None,
    since: Annotated[str | None, Query(description="From this time (ISO 8601; UTC if no offset).")] = None,
    until: Annotated[str | None, Query(description="Before this time.")] = None,
    limit: Annotated[int | None, Query(description="Rows per page.")] = None,
    cursor: Annotated[str | None, Query(description="The 'next' link's cursor.")] = None,
) -> Page:
    """Canonical events, newest first."""
    n = limit_of(request, limit)
    after = decode_cursor(cursor, 3)
    where, params = [], []
    if source:
        where.append("(source = ? OR source_type = ? OR source LIKE ?)")
        params += [source, source, source + ":%"]
    if action:
        where.append("action = ?")
        params.append(action)
    if subject:
        where.append("(" + " OR ".join(f"{c} ILIKE ? ESCAPE '\\'" for c in
                                        ("actor_id", "actor_name", "target_id", "target_name")) + ")")
        params += [f"%{_like(subject)}%"] * 4
    for value, name, op in ((since, "since", ">="), (until, "until", "<")):
        t = parse_time_param(value, name)
        if t is not None:
            where.append(f"time {op} ?")
            params.append(t)
    if after is not None:
        t = parse_time_param(after[0], "cursor")
        where.append(f"({_SORT} < ? OR ({_SORT} = ? AND (event_id < ? OR (event_id = ? AND raw_id < ?))))")
        params += [t, t, after[1], after[1], after[2]]
    sql = (f"SELECT {', '.join(COLUMNS)}, {_SORT} AS _k FROM events"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY _k DESC, event_id DESC, raw_id DESC LIMIT ?")
    with using_store(request) as store:
        rows = store.query_dicts(sql, [*params, n + 1])
    more = None
    if len(rows) > n:
        rows = rows[:n]
        last = rows[-1]
        more = encode_cursor([last["_k"].isoformat(), last["event_id"], last["raw_id"]])
    for r in rows:
        del r["_k"]
    return Page(items=[jsonable(r) for r in rows], next=next_link(request, more))


@router.get("/events/{raw_id}", dependencies=[Depends(require(*READERS))])
def get_event(request: Request, raw_id: str) -> dict:
    """The events one sealed raw record produced, with where it came from."""
    with using_store(request) as store:
        raw = store.query_dicts("SELECT raw_id, source_type, source, file, position, sha256, record_type, "
                                "record_time, run_id FROM raw_records WHERE raw_id = ?", [raw_id])
        if not raw:
            fail(404, "not found", f"no raw record {raw_id!r}")
        events = store.query_dicts("SELECT * FROM events WHERE raw_id = ? ORDER BY event_id", [raw_id])
    return {"raw": jsonable(raw[0]), "events": [jsonable(e) for e in events]}


def _like(text: str) -> str:
    """``text`` matched literally inside ILIKE (its own % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/sources", dependencies=[Depends(require(*READERS))])
def sources(request: Request) -> dict:
    """Per source: counts, time span and field completeness — can this source be trusted as evidence?"""
    with using_store(request) as store:
        cols, rows = queries.source_quality(store)
        qcols, qrows = queries.quarantine_summary(store)
    return {"sources": [jsonable(dict(zip(cols, r, strict=True))) for r in rows],
            "quarantine": [dict(zip(qcols, r, strict=True)) for r in qrows]}


@router.get("/quarantine", response_model=Page, dependencies=[Depends(require(*READERS))])
def quarantine(request: Request,
               source_type: Annotated[str | None, Query(description="e.g. okta")] = None,
               limit: Annotated[int | None, Query(description="Rows per page.")] = None,
               cursor: Annotated[str | None, Query(description="The 'next' link's cursor.")] = None) -> Page:
    """Records set aside, with their position and the reason (their bytes stay sealed in the ledger)."""
    with using_store(request) as store:
        cols, rows = queries.quarantined(store, source_type=source_type, limit=0)
    return offset_page(request, [dict(zip(cols, r, strict=True)) for r in rows], limit, cursor)
