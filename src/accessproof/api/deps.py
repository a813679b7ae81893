"""What every endpoint shares: the store (one request at a time on an embedded store), the error body,
pagination with opaque cursors, and time parameters.

An embedded DuckDB store is one connection, so requests take turns on it through ``using_store``; the
dashboard (``accessproof.web``) uses the same context manager. Errors are always
``{"error": "<short>", "detail": <reason>}`` (``fail`` raises one).
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import orjson
from fastapi import HTTPException, Request
from pydantic import BaseModel

from accessproof.store.base import Store


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


class Page(BaseModel):
    """One page of a list: ``next`` is the URL of the following page (None on the last)."""

    items: list[dict[str, Any]]
    next: str | None = None


#: declared on every router so that the OpenAPI document names the error responses
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in ((400, "Malformed request (the reason is in detail)"),
                       (401, "No or invalid credentials"), (403, "The role may not do this"),
                       (404, "No such thing"))
}


def fail(status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> NoReturn:
    """Stop the request with ``status`` and the error body."""
    raise HTTPException(status, detail={"error": error, "detail": detail}, headers=headers)


def optional_module(name: str) -> Any | None:
    """A module another package provides, if it is there (the dashboard, the scheduler, re-testing)."""
    try:
        found = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    return importlib.import_module(name) if found is not None else None


def install_store(app: Any, store: Store) -> None:
    app.state.store = store
    app.state.store_lock = threading.Lock()
    app.state.waiting = []  # deliveries waiting for the store (``intake.ingest_locked`` combines them)
    app.state.waiting_lock = threading.Lock()


@contextmanager
def using_store(request: Request) -> Iterator[Store]:
    """The app's store, held by this request alone until the block ends (embedded DuckDB is one connection)."""
    state = request.app.state
    with state.store_lock:
        yield state.store


# ------------------------------------------------------------------ pagination

def encode_cursor(position: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(position), default=str)).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """The position a cursor holds; 400 when it is not one of ours."""
    if not cursor:
        return None
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        fail(400, "invalid cursor", "pass the 'next' link of the previous page unchanged")
    if not isinstance(value, list) or len(value) != size:
        fail(400, "invalid cursor", "pass the 'next' link of the previous page unchanged")
    return value


def limit_of(request: Request, limit: int | None) -> int:
    settings = request.app.state.settings
    if limit is None:
        return settings.page_size
    if not 1 <= limit <= settings.max_page_size:
        fail(400, "invalid limit", f"limit must be between 1 and {settings.max_page_size}")
    return limit


def next_link(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return str(request.url.include_query_params(cursor=cursor))


def offset_page(request: Request, rows: list[dict[str, Any]], limit: int | None, cursor: str | None) -> Page:
    """A page of a list a library function returned whole (small lists: findings, accounts, links)."""
    n = limit_of(request, limit)
    pos = decode_cursor(cursor, 1)
    start = 0 if pos is None else pos[0]
    if not isinstance(start, int) or start < 0:
        fail(400, "invalid cursor", "pass the 'next' link of the previous page unchanged")
    items = rows[start:start + n]
    more = encode_cursor([start + n]) if start + n < len(rows) else None
    return Page(items=[jsonable(r) for r in items], next=next_link(request, more))


def rows_page(request: Request, rows_of: Any, limit: int | None, cursor: str | None) -> Page:
    """A page of ``rows_of(store)`` — a library function that lists rows — run while holding the store."""
    with using_store(request) as store:
        rows = rows_of(store)
    return offset_page(request, rows, limit, cursor)


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Rows as JSON values: times in ISO 8601, bytes left out (they are evidence: fetch them by id)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
        elif isinstance(v, bytes | bytearray | memoryview):
            continue
        else:
            out[k] = v
    return out


def parse_time_param(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 time (UTC if no offset); 400 with the reason otherwise."""
    if not value:
        return None
    from accessproof.sources.base import Reject, parse_date_or_time

    try:
        return parse_date_or_time(value, tz="UTC", what=name)
    except Reject as e:
        fail(400, f"invalid {name}", str(e))
