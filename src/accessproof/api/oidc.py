"""OIDC bearer JWTs: a token from the organisation's identity provider instead of an API token.

The JWT must be signed by a key in the provider's JWKS (fetched from ``jwks_url`` and cached by PyJWT's
client, or read from ``jwks_file``), with one of the asymmetric algorithms allowed (never ``none`` or a
shared-secret HMAC), for the configured issuer and audience, and unexpired. Its role comes from the
``role_claim`` (a string or a list): each value is mapped through ``role_map`` (or, when no map is
configured, taken as is when it names a role); when several apply, the most powerful wins (admin, analyst, auditor, ingest). A token that
maps to no role is refused.
"""

from __future__ import annotations

import json
from typing import Any

import jwt

from accessproof.api.auth import AuthError, Principal
from accessproof.api.settings import OIDCSettings, SettingsError

PRECEDENCE = ("admin", "analyst", "auditor", "ingest")


class _Keys:
    """Signing keys by ``kid``: from a JWKS file (read once) or a URL (PyJWT's caching client)."""

    def __init__(self, oidc: OIDCSettings):
        self.oidc = oidc
        self.client = jwt.PyJWKClient(oidc.jwks_url, cache_keys=True, lifespan=300) if oidc.jwks_url else None
        self.keys: dict[str | None, Any] = {}
        if oidc.jwks_file is not None:
            try:
                jwks = jwt.PyJWKSet.from_json(oidc.jwks_file.read_text())
            except (OSError, jwt.PyJWTError, json.JSONDecodeError) as e:
                raise SettingsError(f"cannot read the JWKS file {oidc.jwks_file}: {e}") from None
            self.keys = {k.key_id: k for k in jwks.keys}

    def key_for(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as e:
            raise AuthError(f"malformed JWT: {e}") from None
        if self.client is not None:
            try:
                return self.client.get_signing_key_from_jwt(token)
            except jwt.PyJWTError as e:
                raise AuthError(f"no signing key for this JWT: {e}") from None
        key = self.keys.get(kid) or (next(iter(self.keys.values())) if kid is None and len(self.keys) == 1 else None)
        if key is None:
            raise AuthError(f"no key {kid!r} in the configured JWKS")
        return key


def load_keys(oidc: OIDCSettings) -> Any:
    """The keys, loaded at start-up (a bad JWKS file is a start-up error, not a 401 for everyone)."""
    return _Keys(oidc)


def verify_jwt(state: Any, token: str) -> Principal:
    """The principal of a valid OIDC JWT; ``AuthError`` with the reason otherwise."""
    oidc: OIDCSettings = state.settings.oidc
    key = state.oidc_keys.key_for(token)
    try:
        claims = jwt.decode(token, key.key, algorithms=list(oidc.algorithms), audience=oidc.audience,
                            issuer=oidc.issuer, leeway=oidc.leeway_seconds,
                            options={"require": ["exp", "iss", "aud", "sub"]})
    except jwt.PyJWTError as e:
        raise AuthError(f"JWT refused: {e}") from None
    role = role_of(claims.get(oidc.role_claim), oidc.role_map)
    if role is None:
        raise AuthError(f"the JWT's {oidc.role_claim!r} claim maps to no accessproof role")
    return Principal(subject=f"oidc:{claims['sub']}", role=role, token_id=None, via="oidc")


def role_of(claim: Any, role_map: dict[str, str]) -> str | None:
    values = claim if isinstance(claim, list) else [claim] if isinstance(claim, str) else []
    found = {role_map.get(v) if role_map else v for v in values if isinstance(v, str)}
    return next((r for r in PRECEDENCE if r in found), None)
