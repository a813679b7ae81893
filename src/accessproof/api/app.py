"""The server: ``create_app(store_url)`` is the FastAPI application behind ``accessproof serve``.

It opens the store (a directory: embedded DuckDB; a ``postgresql://`` URL: PostgreSQL) and keeps it on
``app.state.store``; requests take turns on it through ``deps.using_store``. It mounts the REST API under
``/api/v1`` (OpenAPI at ``/openapi.json``, docs at ``/docs``), the webhooks under ``/hooks``, the dashboard
(``accessproof.web.mount``) and the scheduler (``accessproof.server.scheduler``) when those packages exist.
Every request body is limited to ``settings.max_body_bytes`` while it streams in (413 past it), and every
error is ``{"error": …, "detail": …}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accessproof import __version__
from accessproof.api.deps import install_store, optional_module
from accessproof.api.settings import ServerSettings
from accessproof.store import open_store

log = logging.getLogger("accessproof.api")


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"request body is over the {limit:,} byte limit")


class BodyLimit:
    """Refuse a body over ``limit`` bytes as it arrives: a Content-Length over it at once, a chunked body
    at the first piece that crosses it (nothing past the limit is read)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = _error_response(413, "body too large", str(BodyTooLarge(self.limit)))
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited, send)


def _error_response(status: int, error: str, detail: Any = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if isinstance(detail, dict) and "error" in detail:
            return _error_response(exc.status_code, detail["error"], detail.get("detail"), exc.headers)
        phrase = HTTPStatus(exc.status_code).phrase.lower() if exc.status_code in HTTPStatus._value2member_map_ \
            else "error"
        return _error_response(exc.status_code, phrase, detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return _error_response(400, "malformed request", reasons)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error_response(413, "body too large", str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        first = (str(exc).splitlines() or [""])[0][:300]
        return _error_response(500, "internal error", f"{type(exc).__name__}: {first}")


def _own_tables(store: Any) -> None:
    """The API's own tables, made once at start-up rather than on every request."""
    from accessproof.api.auth import ensure_token_table
    from accessproof.api.webhooks import ensure_table

    ensure_token_table(store)
    ensure_table(store)


def create_app(store_url: str, *, settings: ServerSettings | None = None) -> FastAPI:
    """The application over the store at ``store_url``; settings default to ``ServerSettings.load()``."""
    settings = settings or ServerSettings.load()
    oidc_keys = None
    if settings.oidc is not None:
        from accessproof.api.oidc import load_keys

        oidc_keys = load_keys(settings.oidc)
    store = open_store(store_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        sched = optional_module("accessproof.server.scheduler") if settings.scheduler else None
        if sched is not None and hasattr(sched, "start"):
            scheduler = sched.start(app)
        try:
            yield
        finally:
            if scheduler is not None and hasattr(scheduler, "shutdown"):
                scheduler.shutdown()
            with app.state.store_lock:
                app.state.store.close()

    app = FastAPI(title="accessproof", version=__version__, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  description="Identity-governance evidence: ingest, query, controls, audit proof.")
    install_store(app, store)
    _own_tables(store)
    app.state.settings = settings
    app.state.store_url = str(store_url)
    app.state.oidc_keys = oidc_keys
    _install_error_handlers(app)
    from accessproof.api import routers

    for router in routers.ALL:
        app.include_router(router)
    web = optional_module("accessproof.web") if settings.dashboard else None
    if web is not None and hasattr(web, "mount"):
        web.mount(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
