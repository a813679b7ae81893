"""Who may do what: API tokens (kept as SHA-256 hashes), OIDC bearer JWTs, dashboard sessions, and roles.

Roles (``ROLES``): ``ingest`` writes evidence only (ingest endpoints, webhooks); ``analyst`` reads everything
and runs assessments and walkthroughs; ``auditor`` reads, builds packages and fetches proofs; ``admin`` does
everything, including tokens, keys, holds, schedules and purge. No role can change or delete sealed
evidence: there is no endpoint that does, and a purge removes only expired, unheld payloads.

A token is printed once (``ap_<id>_<secret>``) and stored as the SHA-256 of the whole string in
``api_tokens`` (id, token_sha256, role, label, created, revoked). Creating and revoking one are
administrative actions, each sealed in the ledger (``actions.seal_admin_action``).

``authenticate(request)`` accepts, in order: a ``Principal`` the dashboard put on ``request.state.principal``
(its signed session cookie), ``Authorization: Bearer ap_…`` (an API token) or ``Authorization: Bearer <JWT>``
(OIDC, when configured). ``require(*roles)`` is the FastAPI dependency: 401 without (valid) credentials,
403 when the role is not among ``roles`` (admin always is).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Request

from accessproof.api.deps import fail, using_store
from accessproof.api.roles import ROLES
from accessproof.store.base import Store

READERS = ("analyst", "auditor")
TOKEN_PREFIX = "ap_"

TOKEN_TABLE = """CREATE TABLE IF NOT EXISTS api_tokens (
  id VARCHAR PRIMARY KEY, token_sha256 VARCHAR NOT NULL, role VARCHAR NOT NULL, label VARCHAR,
  created TIMESTAMPTZ NOT NULL, revoked TIMESTAMPTZ)"""


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    token_id: str | None = None
    via: Literal["token", "oidc", "session"] = "token"


class AuthError(ValueError):
    """Refused credentials; the message says why in one line."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_token_table(store: Store) -> None:
    store.execute(TOKEN_TABLE)


def create_token(store: Store, role: str, label: str | None = None, *, by: str = "accessproof") -> str:
    """A new API token for ``role``; only its hash is kept. Sealed as an ``admin_action``."""
    from accessproof.api.actions import seal_admin_action

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    ensure_token_table(store)
    token_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    store.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, NULL)",
                  [token_id, _hash(token), role, label, datetime.now(UTC)])
    seal_admin_action(store, "token.create", by, {"token_id": token_id, "role": role, "label": label})
    return token


def list_tokens(store: Store, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    """Tokens without their hashes, oldest first."""
    ensure_token_table(store)
    sql = "SELECT id, role, label, created, revoked FROM api_tokens"
    if not include_revoked:
        sql += " WHERE revoked IS NULL"
    return store.query_dicts(sql + " ORDER BY created, id")


def revoke_token(store: Store, token_id: str, *, by: str = "accessproof") -> bool:
    """Revoke a token (sealed as an ``admin_action``); False when there is no such live token."""
    from accessproof.api.actions import seal_admin_action

    ensure_token_table(store)
    live = store.query("SELECT role FROM api_tokens WHERE id = ? AND revoked IS NULL", [token_id])
    if not live:
        return False
    store.execute("UPDATE api_tokens SET revoked = ? WHERE id = ?", [datetime.now(UTC), token_id])
    seal_admin_action(store, "token.revoke", by, {"token_id": token_id, "role": live[0][0]})
    return True


def principal_for_token(store: Store, token: str) -> Principal | None:
    """The principal of a live API token (the dashboard's sign-in uses this too); the served app makes
    ``api_tokens`` when it starts."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id = token[len(TOKEN_PREFIX):].split("_", 1)[0]
    rows = store.query("SELECT token_sha256, role, label FROM api_tokens WHERE id = ? AND revoked IS NULL",
                       [token_id])
    if not rows or not hmac.compare_digest(rows[0][0], _hash(token)):
        return None
    return Principal(subject=f"token:{token_id}" + (f" ({rows[0][2]})" if rows[0][2] else ""),
                     role=rows[0][1], token_id=token_id, via="token")


def authenticate(request: Request) -> Principal | None:
    """The caller, or None (then ``request.state.auth_error`` says why, if credentials were refused)."""
    session = getattr(request.state, "principal", None)
    if isinstance(session, Principal):
        return session
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        request.state.auth_error = "use 'Authorization: Bearer <token>'"
        return None
    if credential.startswith(TOKEN_PREFIX):
        with using_store(request) as store:
            found = principal_for_token(store, credential)
        if found is None:
            request.state.auth_error = "unknown or revoked token"
        return found
    oidc = request.app.state.settings.oidc
    if oidc is None:
        request.state.auth_error = "not an accessproof API token (and no OIDC issuer is configured)"
        return None
    from accessproof.api.oidc import verify_jwt

    try:
        return verify_jwt(request.app.state, credential)
    except AuthError as e:
        request.state.auth_error = str(e)
        return None


def require(*roles: str) -> Callable[[Request], Principal]:
    """Dependency: the caller must hold one of ``roles`` (admin always may)."""
    allowed = frozenset(roles) | {"admin"}
    unknown = allowed - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}")

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        if principal is None:
            reason = getattr(request.state, "auth_error", None) or "send 'Authorization: Bearer <token>'"
            fail(401, "unauthenticated", reason, headers={"WWW-Authenticate": "Bearer"})
        if principal.role not in allowed:
            fail(403, "forbidden", f"role {principal.role!r} may not do this (needs "
                                   f"{' or '.join(r for r in ROLES if r in allowed)})")
        request.state.api_principal = principal
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]  # read by the role-matrix test
    return dependency
