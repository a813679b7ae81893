"""Sign-in with an API token (it becomes a signed session cookie; the token is not kept) and sign-out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from accessproof.api.auth import principal_for_token
from accessproof.web.pages import check_csrf, principal_of, render, with_store
from accessproof.web.session import COOKIE, LOGIN_CSRF_COOKIE, cookie_options, new_session

router = APIRouter()


def _next(value: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //evil.example)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if principal_of(request) is not None:
        return RedirectResponse(_next(next), status_code=303)
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", login_csrf=token, next=_next(next))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=1800, **cookie_options(request))
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    token = str(form.get("token") or "").strip()
    target = _next(str(form.get("next") or "/"))
    principal = await with_store(request, principal_for_token, token) if token else None
    if principal is None:
        fresh = secrets.token_urlsafe(24)
        response = render(request, "login.html", status=401, login_csrf=fresh, next=target,
                          login_error="That token is unknown or revoked. Ask an admin for one "
                                      "(accessproof token create --role auditor).")
        response.set_cookie(LOGIN_CSRF_COOKIE, fresh, max_age=1800, **cookie_options(request))
        return response
    if principal.role == "ingest":
        fresh = secrets.token_urlsafe(24)
        response = render(request, "login.html", status=403, login_csrf=fresh, next=target,
                          login_error="An ingest token writes evidence only; it cannot open the dashboard.")
        response.set_cookie(LOGIN_CSRF_COOKIE, fresh, max_age=1800, **cookie_options(request))
        return response
    signer = request.app.state.web_signer
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, signer.dumps(new_session(principal)), max_age=8 * 3600, **cookie_options(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
