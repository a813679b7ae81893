"""What every page shares: the Jinja2 environment (autoescape on), role guards, CSRF checks and rendering.

Guards are FastAPI dependencies: ``reader`` (analyst, auditor, admin), ``runner`` (analyst, admin),
``packager`` (auditor, admin) and ``admin``. Without a session a page redirects to the sign-in page;
with a role that may not see it, the answer is a 403 page — the same rule the API applies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from accessproof.api.auth import Principal
from accessproof.api.deps import using_store
from accessproof.web import HERE, charts
from accessproof.web.session import CSRF_FIELD, csrf_ok

READ_ROLES = ("analyst", "auditor", "admin")
RUN_ROLES = ("analyst", "admin")
PACKAGE_ROLES = ("auditor", "admin")
ADMIN_ROLES = ("admin",)

NAV = (
    ("overview", "/", "Overview", READ_ROLES),
    ("controls", "/controls", "Controls", READ_ROLES),
    ("assessments", "/assessments", "Assessments", READ_ROLES),
    ("findings", "/findings", "Findings", READ_ROLES),
    ("people", "/people", "People", READ_ROLES),
    ("evidence", "/evidence", "Evidence search", READ_ROLES),
    ("matrix", "/matrix", "Traceability", READ_ROLES),
    ("packages", "/packages", "Audit packages", READ_ROLES),
    ("sources", "/sources", "Sources", READ_ROLES),
    ("admin", "/admin", "Admin", ADMIN_ROLES),
)


class SignInRequired(Exception):
    """No (valid) session: the page redirects to sign-in."""


class Forbidden(Exception):
    """The signed-in role may not see or do this."""

    def __init__(self, principal: Principal, needs: tuple[str, ...]) -> None:
        super().__init__(f"role {principal.role!r} may not do this")
        self.principal, self.needs = principal, needs


class NotFound(Exception):
    """No such control, finding or person: a 404 page saying which."""


class BadForm(Exception):
    """A form that failed its CSRF check or carried a bad value; one line for the user."""


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(t=fmt_time, day=fmt_day, n=fmt_num, dur=fmt_hours, pct=fmt_pct, fw=framework_name,
                       short=short, q=quote)
    env.globals.update(charts=charts, nav=NAV, now=lambda: datetime.now(UTC))
    return env


def fmt_time(v: Any) -> str:
    from accessproof.web.data import utc

    d = utc(v)
    return d.strftime("%Y-%m-%d %H:%M") if d else "—"


def fmt_day(v: Any) -> str:
    from accessproof.web.data import utc

    d = utc(v)
    return d.strftime("%Y-%m-%d") if d else "—"


def fmt_num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    return f"{int(v):,}"


def fmt_hours(v: Any) -> str:
    if v is None:
        return "—"
    h = float(v)
    if abs(h) < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} d"


def fmt_pct(v: Any) -> str:
    return "—" if v is None else f"{float(v):.0f}%"


def framework_name(fw: str) -> str:
    from accessproof.audit.matrix import FRAMEWORK_NAMES

    return FRAMEWORK_NAMES.get(fw, fw)


def short(v: Any, n: int = 80) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def parse_when(value: str | None, what: str) -> tuple[datetime | None, str | None]:
    """(time, None) for an ISO date or time (UTC unless it says otherwise), (None, one-line reason) if bad."""
    if not value or not value.strip():
        return None, None
    from accessproof.sources.base import Reject, parse_date_or_time

    try:
        return parse_date_or_time(value.strip(), tz="UTC", what=what), None
    except Reject as e:
        return None, str(e)


def principal_of(request: Request) -> Principal | None:
    p = getattr(request.state, "principal", None)
    return p if isinstance(p, Principal) and getattr(request.state, "web_session", None) else None


def guard(*roles: str) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        p = principal_of(request)
        if p is None:
            raise SignInRequired()
        if p.role not in roles:
            raise Forbidden(p, roles)
        return p

    return dependency


reader = guard(*READ_ROLES)
runner = guard(*RUN_ROLES)
packager = guard(*PACKAGE_ROLES)
admin = guard(*ADMIN_ROLES)


def check_csrf(request: Request, form: Any) -> None:
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise BadForm("the form expired or did not come from this dashboard (CSRF check failed); reload and retry")


async def with_store(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(store, *args)`` on a worker thread, holding the store (an assessment may hold it for seconds:
    the event loop must not wait on the lock)."""
    def call() -> Any:
        with using_store(request) as store:
            return fn(store, *args, **kwargs)

    return await run_in_threadpool(call)


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    env: Environment = request.app.state.web_templates
    p = principal_of(request)
    session = getattr(request.state, "web_session", None) or {}
    csrf = session.get("csrf") or ctx.pop("login_csrf", "")
    body = env.get_template(name).render(
        request=request, principal=p, role=p.role if p else None, csrf_field=CSRF_FIELD,
        csrf=Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf),
        flash=request.query_params.get("msg"), error=request.query_params.get("err"), **ctx)
    return HTMLResponse(body, status_code=status)


def back(url: str, *, msg: str | None = None, err: str | None = None) -> RedirectResponse:
    """Redirect after a form (303: the browser follows with GET) with a one-line message."""
    sep = "&" if "?" in url else "?"
    if msg:
        url += f"{sep}msg={quote(msg)}"
    elif err:
        url += f"{sep}err={quote(err)}"
    return RedirectResponse(url, status_code=303)


def install(app: FastAPI) -> None:
    from accessproof.web.views import admin as admin_views
    from accessproof.web.views import audit, controls, overview, people, signin

    for module in (signin, overview, controls, people, audit, admin_views):
        app.include_router(module.router, include_in_schema=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", status=403, title="Not allowed",
                      message=f"Your role ({exc.principal.role}) may not open this page or do this; it needs "
                              f"{' or '.join(exc.needs)}.")

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return render(request, "error.html", status=404, title="Not found", message=str(exc))

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, exc: BadForm) -> Response:
        return render(request, "error.html", status=400, title="Request refused", message=str(exc))
