"""A served store for the API tests: the real samples ingested, a signing key, one token per role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from accessproof.api.auth import ROLES, create_token
from accessproof.api.settings import ServerSettings
from accessproof.store import open_store
from tests.conftest import dev_data

HOOK_SECRET = "test-hook-secret"
OKTA_SECRET = "okta-authorization-secret"


def make_settings(**over) -> ServerSettings:
    base = {"okta_hook_secret": OKTA_SECRET, "hook_secrets": {"*": HOOK_SECRET}, "scheduler": False, "dashboard": False, "retest": False,
            "max_body_bytes": 4 * 1024 * 1024}
    return ServerSettings.from_dict({**base, **over})


def served_store(root: Path, *, samples: bool = True) -> tuple[Path, dict[str, str]]:
    """A store under ``root`` (the okta samples ingested when ``samples``) and a token per role."""
    from accessproof.ingest import ingest_paths
    from accessproof.ledger import init_store

    store_dir = root / "store"
    led, _ = init_store(store_dir)
    led.close()
    s = open_store(store_dir)
    try:
        if samples:
            ingest_paths(s, "okta", [dev_data() / "okta"])
        tokens = {role: create_token(s, role, f"test {role}") for role in ROLES}
    finally:
        s.close()
    return store_dir, tokens


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(client, tokens, store_dir) over a store holding the okta samples."""
    from accessproof.api.app import create_app

    store_dir, tokens = served_store(tmp_path_factory.mktemp("api"))
    app = create_app(str(store_dir), settings=make_settings())
    with TestClient(app) as client:
        yield client, tokens, store_dir


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Org:
    """The simulated company (40 people, 2 months), sealed, linked and assessed; one token per role."""

    store_dir: Path
    tokens: dict[str, str]
    assessment_id: str


@pytest.fixture(scope="session")
def org(tmp_path_factory) -> Org:
    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store
    from accessproof.evidence import seal_control_runs
    from accessproof.linking.link import link_all

    built = build_demo_store(tmp_path_factory.mktemp("api-org"), people=40, months=2)
    s = open_store(built.store_dir)
    try:
        link_all(s)
        a = assess(s)
        seal_control_runs(s, a.runs)
        tokens = {role: create_token(s, role, f"org {role}") for role in ROLES}
    finally:
        s.close()
    return Org(built.store_dir, tokens, a.assessment_id)


@pytest.fixture(scope="module")
def org_client(org):
    from accessproof.api.app import create_app

    with TestClient(create_app(str(org.store_dir), settings=make_settings())) as client:
        yield client
