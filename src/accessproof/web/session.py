"""Dashboard sign-in: an API token pasted once becomes a signed session cookie; CSRF tokens for every form.

The cookie (``ap_session``: HttpOnly, SameSite=Strict, Secure over HTTPS) carries the token's id, role and
subject, a CSRF secret and an expiry, signed with HMAC-SHA256 — never the token itself. On each request the
signature and expiry are checked and the token must still be live in ``api_tokens``, so revoking a token
ends its sessions at once. The principal is put on ``request.state.principal``, where
``accessproof.api.auth.authenticate`` finds it: the API honours a dashboard session for reads, and for
writes only with the session's CSRF token in an ``X-CSRF-Token`` header.

The signing secret is ``ACCESSPROOF_WEB_SECRET`` when set (keep sessions across restarts and workers),
otherwise random per process (a restart signs everyone out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from typing import Any

import orjson
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from accessproof.api.auth import Principal, ensure_token_table
from accessproof.api.deps import using_store

COOKIE = "ap_session"
LOGIN_CSRF_COOKIE = "ap_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_AGE = 8 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: paths whose unsafe requests check the CSRF token themselves (the dashboard's forms)
DASHBOARD_WRITES = ("/login", "/logout", "/controls/", "/packages", "/admin/")


def _secret() -> bytes:
    env = os.environ.get("ACCESSPROOF_WEB_SECRET")
    return hashlib.sha256(env.encode()).digest() if env else secrets.token_bytes(32)


class SessionSigner:
    """Signs and opens session cookies with one secret."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret or _secret()

    def _mac(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.secret, body, hashlib.sha256).digest()).decode().rstrip("=")

    def dumps(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")
        return f"{body}.{self._mac(body.encode())}"

    def loads(self, cookie: str | None) -> dict[str, Any] | None:
        """The session, or None when the cookie is missing, forged, malformed or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac(body.encode())):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int) or data["exp"] < time.time():
            return None
        return data


def new_session(principal: Principal) -> dict[str, Any]:
    return {"tid": principal.token_id, "sub": principal.subject, "role": principal.role,
            "csrf": secrets.token_urlsafe(24), "exp": int(time.time()) + MAX_AGE}


def token_is_live(request: Request, token_id: str | None) -> bool:
    if not token_id:
        return False
    with using_store(request) as store:
        ensure_token_table(store)
        return bool(store.query("SELECT 1 FROM api_tokens WHERE id = ? AND revoked IS NULL", [token_id]))


def session_of(request: Request) -> dict[str, Any] | None:
    signer: SessionSigner = request.app.state.web_signer
    data = signer.loads(request.cookies.get(COOKIE))
    if data is None or not token_is_live(request, data.get("tid")):
        return None
    return data


def _is_dashboard_write(path: str) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p) for p in DASHBOARD_WRITES)


async def session_middleware(request: Request, call_next: Any) -> Any:
    """Put the session's principal on ``request.state`` (see the module docstring for unsafe methods)."""
    if COOKIE in request.cookies:
        data = await run_in_threadpool(session_of, request)
        if data is not None:
            request.state.web_session = data
            allowed = (request.method in SAFE_METHODS or _is_dashboard_write(request.url.path)
                       or hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), data["csrf"]))
            if allowed:
                request.state.principal = Principal(subject=data["sub"], role=data["role"], token_id=data["tid"],
                                                    via="session")
    return await call_next(request)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """Whether a form's CSRF token matches the session's (or, before sign-in, the login cookie's)."""
    if not submitted:
        return False
    session = getattr(request.state, "web_session", None)
    expected = session["csrf"] if session else request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(expected) and hmac.compare_digest(str(submitted), str(expected))


def cookie_options(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/"}
