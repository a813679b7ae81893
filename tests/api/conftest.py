"""Served stores for the API tests: a signing key, one token per role, the real samples when asked.

``backend`` runs a test module once per backend: stores in directories (embedded DuckDB), then in fresh
PostgreSQL schemas (dropped afterwards; key files under a temporary ``ACCESSPROOF_HOME``). ``org`` is the
demo organisation (linked and assessed) on each backend, for the role matrix and the reads. Fuzzing and the
load test run against a live server over an embedded store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from accessproof.api.auth import ROLES, create_token
from accessproof.api.settings import ServerSettings
from accessproof.store import open_store
from tests.conftest import dev_data
from tests.store.conftest import pg_admin, schema_url

HOOK_SECRET = "test-hook-secret"
OKTA_SECRET = "okta-authorization-secret"


def make_settings(**over) -> ServerSettings:
    base = {"okta_hook_secret": OKTA_SECRET, "hook_secrets": {"*": HOOK_SECRET}, "scheduler": False,
            "dashboard": False, "retest": False, "max_body_bytes": 4 * 1024 * 1024}
    return ServerSettings.from_dict({**base, **over})


def served_store(location: str | Path, *, samples: bool = True) -> dict[str, str]:
    """Make the store at ``location`` (the okta samples ingested when ``samples``); a token per role."""
    from accessproof.ingest import ingest_paths
    from accessproof.ledger import init_store

    led, _ = init_store(str(location))
    led.close()
    s = open_store(str(location))
    try:
        if samples:
            ingest_paths(s, "okta", [dev_data() / "okta"])
        return {role: create_token(s, role, f"test {role}") for role in ROLES}
    finally:
        s.close()


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def backend(request, tmp_path_factory) -> Iterator[Callable[[str], str]]:
    """``new(name)``: where a new store lives — a directory, or a fresh PostgreSQL schema."""
    root = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "duckdb":
        yield lambda name: str(root / name)
        return
    schemas: list[str] = []

    def new(name: str) -> str:
        schemas.append(f"t_api_{uuid.uuid4().hex[:12]}")
        return schema_url(schemas[-1])

    admin = pg_admin()
    admin.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCESSPROOF_HOME", str(root / "home"))
        yield new
    admin = pg_admin()
    try:
        for schema in schemas:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        admin.close()


@pytest.fixture(scope="module")
def served(backend):
    """(client, tokens, location) over a store holding the okta samples, once per backend."""
    from accessproof.api.app import create_app

    location = backend("served")
    tokens = served_store(location)
    with TestClient(create_app(location, settings=make_settings())) as client:
        yield client, tokens, location


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Org:
    """The simulated company (40 people, 2 months), sealed, linked and assessed; one token per role."""

    location: str
    tokens: dict[str, str]
    assessment_id: str
    home: Path  # ACCESSPROOF_HOME: where a PostgreSQL store's key files are


@pytest.fixture(scope="session", params=["duckdb", "postgres"])
def org(request, tmp_path_factory) -> Iterator[Org]:
    """The demo organisation in a directory, then in a PostgreSQL schema (dropped at the end)."""
    from accessproof.controls import assess
    from accessproof.demo.run import ingest_demo
    from accessproof.demo.simulate import simulate
    from accessproof.evidence import seal_control_runs
    from accessproof.ledger import init_store
    from accessproof.linking.link import link_all

    root = tmp_path_factory.mktemp(f"api-org-{request.param}")
    schema = f"t_api_org_{uuid.uuid4().hex[:10]}"
    location = str(root / "store") if request.param == "duckdb" else schema_url(schema)
    simulate(40, 2, 7, root / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCESSPROOF_HOME", str(root / "home"))
        led, _ = init_store(location)
        led.close()
        s = open_store(location)
        try:
            ingest_demo(s, root / "data")
            link_all(s)
            a = assess(s)
            seal_control_runs(s, a.runs)
            tokens = {role: create_token(s, role, f"org {role}") for role in ROLES}
        finally:
            s.close()
    yield Org(location, tokens, a.assessment_id, root / "home")
    if request.param == "postgres":
        admin = pg_admin()
        try:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            admin.close()


@pytest.fixture(scope="module")
def org_client(org):
    from accessproof.api.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCESSPROOF_HOME", str(org.home))
        with TestClient(create_app(org.location, settings=make_settings())) as client:
            yield client
