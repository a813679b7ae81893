"""The dashboard: server-rendered pages for compliance teams and auditors, mounted on the API's app.

``mount(app)`` adds the pages at ``/`` (Jinja2 with autoescape: every value from the store is escaped),
``/static`` (one stylesheet; charts are inline SVG drawn on the server, so no JavaScript library, no CDN,
no build step), the session middleware (``session``: sign in with an API token, signed cookie, CSRF token
on every form) and a strict Content-Security-Policy (no script at all). Pages read through the same library
functions as the CLI and the API, on the app's store (``app.state.store``), one request at a time
(``accessproof.api.deps.using_store``). Roles are the API's: every page needs a reading role (analyst,
auditor, admin), running controls needs analyst or admin, building packages auditor or admin, and the
admin pages admin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def mount(app: FastAPI) -> None:
    """Add the dashboard to ``app`` (which holds the store as ``app.state.store``, see ``api.deps``)."""
    from accessproof.web import pages
    from accessproof.web.session import SessionSigner, session_middleware

    app.state.web_signer = getattr(app.state, "web_signer", None) or SessionSigner()
    app.state.web_templates = pages.templates()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="web-static")
    app.middleware("http")(session_middleware)
    app.middleware("http")(_security_headers)
    pages.install(app)


async def _security_headers(request: Any, call_next: Any) -> Any:
    response = await call_next(request)
    path = request.url.path
    if not path.startswith(("/api/", "/hooks/", "/docs", "/openapi", "/redoc")):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers.setdefault("Cache-Control", "no-store")
    return response


__all__ = ["mount"]
