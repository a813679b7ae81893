"""What the server is configured with: limits, webhook secrets, OIDC, scheduling.

Settings come from a TOML file (``accessproof serve --config server.toml``) and ``ACCESSPROOF_*``
environment variables, the environment winning, so that secrets need not be written into a file::

    max_body_bytes = 33554432          # ACCESSPROOF_MAX_BODY_BYTES: larger request bodies get 413
    okta_hook_secret = "…"             # ACCESSPROOF_OKTA_HOOK_SECRET: the Authorization value Okta sends
    hook_tolerance_seconds = 300       # ACCESSPROOF_HOOK_TOLERANCE: accepted clock skew of signed webhooks
    scheduler = true                   # ACCESSPROOF_SCHEDULER: start accessproof.server.scheduler
    dashboard = true                   # ACCESSPROOF_DASHBOARD: mount accessproof.web at /
    retest = true                      # ACCESSPROOF_RETEST: re-test a delivery's subjects after it lands

    [hook_secrets]                     # ACCESSPROOF_HOOK_SECRET (every source type),
    servicenow = "…"                   # ACCESSPROOF_HOOK_SECRET_SERVICENOW (one source type)

    [oidc]                             # ACCESSPROOF_OIDC_ISSUER, _AUDIENCE, _JWKS_URL, _JWKS_FILE, _ROLE_CLAIM
    issuer = "https://login.example.com/"
    audience = "accessproof"
    jwks_url = "https://login.example.com/.well-known/jwks.json"
    role_claim = "groups"
    [oidc.role_map]                    # ACCESSPROOF_OIDC_ROLE_MAP="grc-auditors=auditor,grc-admins=admin"
    grc-auditors = "auditor"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_TOLERANCE = 300
ENV = "ACCESSPROOF_"


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one line for the operator."""


@dataclass
class OIDCSettings:
    """Bearer JWTs from an identity provider: checked against issuer, audience and the provider's keys."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    role_claim: str = "roles"
    #: claim value -> accessproof role; without a map, claim values that name a role are taken as is
    role_map: dict[str, str] = field(default_factory=dict)
    algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
    leeway_seconds: int = 30


@dataclass
class ServerSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY
    okta_hook_secret: str | None = None
    #: source type (or "*" for every type) -> shared secret of the HMAC-signed webhook
    hook_secrets: dict[str, str] = field(default_factory=dict)
    hook_tolerance_seconds: int = DEFAULT_TOLERANCE
    oidc: OIDCSettings | None = None
    scheduler: bool = True
    dashboard: bool = True
    retest: bool = True
    #: rows per page when a request gives no limit, and the most a request may ask for
    page_size: int = 100
    max_page_size: int = 1000

    def hook_secret(self, source_type: str) -> str | None:
        return self.hook_secrets.get(source_type) or self.hook_secrets.get("*")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None,
             env: Mapping[str, str] | None = None) -> ServerSettings:
        """From ``path`` (TOML) if given, then the environment; errors name the setting."""
        doc: dict[str, Any] = {}
        if path:
            try:
                doc = tomllib.loads(Path(path).read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                raise SettingsError(f"cannot read server settings {path}: {e}") from None
        env = os.environ if env is None else env
        return cls.from_dict(_overlay_env(doc, env))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> ServerSettings:
        known = {"max_body_bytes", "okta_hook_secret", "hook_secrets", "hook_tolerance_seconds", "oidc",
                 "scheduler", "dashboard", "retest", "page_size", "max_page_size"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise SettingsError(f"unknown server setting(s): {', '.join(unknown)}")
        s = cls(
            max_body_bytes=_int(doc, "max_body_bytes", DEFAULT_MAX_BODY),
            okta_hook_secret=doc.get("okta_hook_secret") or None,
            hook_secrets={str(k).lower(): str(v) for k, v in (doc.get("hook_secrets") or {}).items() if v},
            hook_tolerance_seconds=_int(doc, "hook_tolerance_seconds", DEFAULT_TOLERANCE),
            oidc=_oidc(doc.get("oidc")),
            scheduler=_bool(doc.get("scheduler", True)),
            dashboard=_bool(doc.get("dashboard", True)),
            retest=_bool(doc.get("retest", True)),
            page_size=_int(doc, "page_size", 100),
            max_page_size=_int(doc, "max_page_size", 1000),
        )
        if s.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024")
        if not 1 <= s.page_size <= s.max_page_size:
            raise SettingsError("page_size must be between 1 and max_page_size")
        return s


def _int(doc: Mapping[str, Any], key: str, default: int) -> int:
    value = doc.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{key} must be a whole number, not {value!r}") from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _oidc(doc: Mapping[str, Any] | None) -> OIDCSettings | None:
    if not doc or not doc.get("issuer"):
        return None
    if not doc.get("audience"):
        raise SettingsError("oidc: an audience is required with an issuer")
    if not (doc.get("jwks_url") or doc.get("jwks_file")):
        raise SettingsError("oidc: give jwks_url or jwks_file")
    from accessproof.api.roles import ROLES

    role_map = {str(k): str(v) for k, v in (doc.get("role_map") or {}).items()}
    bad = sorted({v for v in role_map.values() if v not in ROLES})
    if bad:
        raise SettingsError(f"oidc.role_map names unknown role(s) {bad}; roles are {', '.join(ROLES)}")
    return OIDCSettings(
        issuer=str(doc["issuer"]),
        audience=str(doc["audience"]),
        jwks_url=doc.get("jwks_url") or None,
        jwks_file=Path(doc["jwks_file"]) if doc.get("jwks_file") else None,
        role_claim=str(doc.get("role_claim") or "roles"),
        role_map=role_map,
    )


def _overlay_env(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    out = dict(doc)
    for key, name in (("max_body_bytes", "MAX_BODY_BYTES"), ("okta_hook_secret", "OKTA_HOOK_SECRET"),
                      ("hook_tolerance_seconds", "HOOK_TOLERANCE"), ("scheduler", "SCHEDULER"), ("dashboard", "DASHBOARD"),
                      ("retest", "RETEST")):
        if env.get(ENV + name):
            out[key] = env[ENV + name]
    secrets = dict(out.get("hook_secrets") or {})
    for name, value in env.items():
        if name == ENV + "HOOK_SECRET" and value:
            secrets["*"] = value
        elif name.startswith(ENV + "HOOK_SECRET_") and value:
            secrets[name.removeprefix(ENV + "HOOK_SECRET_").lower()] = value
    if secrets:
        out["hook_secrets"] = secrets
    oidc = dict(out.get("oidc") or {})
    for key in ("issuer", "audience", "jwks_url", "jwks_file", "role_claim"):
        if env.get(f"{ENV}OIDC_{key.upper()}"):
            oidc[key] = env[f"{ENV}OIDC_{key.upper()}"]
    if env.get(ENV + "OIDC_ROLE_MAP"):
        pairs = [p.partition("=") for p in env[ENV + "OIDC_ROLE_MAP"].split(",") if p.strip()]
        oidc["role_map"] = {k.strip(): v.strip() for k, _, v in pairs}
    if oidc:
        out["oidc"] = oidc
    return out
