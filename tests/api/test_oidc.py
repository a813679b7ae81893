"""OIDC bearer JWTs checked against a JWKS file made here with a local RSA key: issuer, audience,
expiry, signature and role mapping; and the server settings that configure it."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from accessproof.api.app import create_app
from accessproof.api.settings import ServerSettings, SettingsError
from tests.api.conftest import make_settings, served_store

ISSUER = "https://login.acme.test/"
AUDIENCE = "accessproof"


def _key(kid: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return key, jwk


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    root = tmp_path_factory.mktemp("oidc")
    key, jwk = _key("k1")
    other, _ = _key("k1")  # same kid, a key the provider never published
    jwks = root / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    served_store(root / "st", samples=False)
    settings = make_settings(oidc={"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(jwks),
                                   "role_claim": "groups",
                                   "role_map": {"grc-auditors": "auditor", "grc-admins": "admin"}})
    with TestClient(create_app(str(root / "st"), settings=settings)) as client:
        yield client, key, other


def _jwt(key, **over) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "00u1abc", "iat": now, "exp": now + 300,
              "groups": ["everyone", "grc-auditors"], **over}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def _whoami(client, token: str):
    return client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})


def test_a_valid_jwt_maps_its_group_to_a_role(idp):
    client, key, _ = idp
    r = _whoami(client, _jwt(key))
    assert r.status_code == 200, r.text
    assert r.json() == {"subject": "oidc:00u1abc", "role": "auditor", "token_id": None, "via": "oidc"}
    assert _whoami(client, _jwt(key, groups=["grc-auditors", "grc-admins"])).json()["role"] == "admin"
    r = client.get("/api/v1/admin/tokens", headers={"Authorization": f"Bearer {_jwt(key)}"})
    assert r.status_code == 403  # an auditor from the IdP is still only an auditor


@pytest.mark.parametrize("case", ["expired", "wrong issuer", "wrong audience", "foreign key", "no role",
                                  "unmapped role name", "alg none", "hs256 with the public key", "garbage"])
def test_bad_jwts_are_401(idp, case):
    client, key, other = idp
    now = int(time.time())
    token = {
        "expired": lambda: _jwt(key, iat=now - 7200, exp=now - 3600),
        "wrong issuer": lambda: _jwt(key, iss="https://evil.test/"),
        "wrong audience": lambda: _jwt(key, aud="something-else"),
        "foreign key": lambda: _jwt(other),
        "no role": lambda: _jwt(key, groups=["everyone"]),
        "unmapped role name": lambda: _jwt(key, groups=["admin"]),  # a map is configured: only it counts
        "alg none": lambda: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60,
                                        "groups": ["grc-admins"]}, None, algorithm="none", headers={"kid": "k1"}),
        "hs256 with the public key": lambda: _hs256_confusion(key, now),
        "garbage": lambda: "aaa.bbb.ccc",
    }[case]()
    r = _whoami(client, token)
    assert r.status_code == 401, (case, r.text)
    assert r.json()["error"] == "unauthenticated"


def _hs256_confusion(key, now: int) -> str:
    import base64
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization

    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(d: bytes) -> str:
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60,
                           "groups": ["grc-admins"]}).encode())
    sig = b64(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def test_settings_from_toml_and_environment(tmp_path):
    cfg = tmp_path / "server.toml"
    cfg.write_text('max_body_bytes = 2048\n[hook_secrets]\nservicenow = "from-file"\n'
                   '[oidc]\nissuer = "https://i/"\naudience = "a"\njwks_url = "https://i/jwks"\n')
    s = ServerSettings.load(cfg, env={"ACCESSPROOF_HOOK_SECRET": "everyone", "ACCESSPROOF_MAX_BODY_BYTES": "4096",
                                      "ACCESSPROOF_OIDC_ROLE_MAP": "g1=auditor, g2=admin"})
    assert s.max_body_bytes == 4096
    assert s.hook_secret("servicenow") == "from-file" and s.hook_secret("github") == "everyone"
    assert s.oidc is not None and s.oidc.role_map == {"g1": "auditor", "g2": "admin"}
    for bad, message in (({"oidc": {"issuer": "x"}}, "audience"), ({"max_body_bytes": "lots"}, "whole number"),
                         ({"oidc": {"issuer": "x", "audience": "a", "jwks_url": "u", "role_map": {"g": "root"}}},
                          "unknown role"), ({"colour": "blue"}, "unknown server setting")):
        with pytest.raises(SettingsError, match=message):
            ServerSettings.from_dict(bad)
    missing = tmp_path / "nope.json"
    with pytest.raises(SettingsError, match="JWKS"):
        create_app(str(tmp_path / "st"), settings=make_settings(oidc={
            "issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(missing)}))
