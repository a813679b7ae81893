"""The dashboard on the PostgreSQL server backend, page for page against the same demo on DuckDB.

One small demo company (40 people, 2 months) is simulated once and ingested twice: into a DuckDB directory
and into a fresh PostgreSQL schema (127.0.0.1:5432, database ``test``; dropped at the end). Both are linked,
assessed twice and re-tested once for one person (an event-driven ``retest-…`` run), and each is served by
``accessproof serve``'s app through FastAPI's TestClient (no browser: ``test_dashboard.py`` drives Chromium
on DuckDB). Every page must answer 200 on PostgreSQL with its content, and show what it shows on DuckDB once
what differs by construction is masked: random ids (tokens, runs, assessments, the log's origin), the
ledger's hashes and signatures (salted per store) and the clock time of the runs (see ``_MASKS``). A record's
index in the ledger is not masked: both backends seal in read order.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.store.conftest import pg_admin, schema_url

BACKENDS = ("duckdb", "postgres")
RETESTED_CONTROL = "revocation_late"


@dataclass
class Site:
    clients: dict[str, TestClient]  # role -> a client signed in with that role's token
    location: str

    def get(self, path: str, role: str = "analyst"):
        return self.clients[role].get(path)


def _sign_in(client: TestClient, token: str) -> None:
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"csrf_token": csrf, "token": token, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def _first_person(store) -> str:
    return store.query("SELECT min(person_id) FROM persons_current")[0][0]


@pytest.fixture(scope="session")
def sites(tmp_path_factory) -> Iterator[dict[str, Site]]:
    """backend -> the demo served on it (built from the same simulated exports)."""
    from accessproof.api.app import create_app
    from accessproof.api.auth import create_token
    from accessproof.api.settings import ServerSettings
    from accessproof.controls import assess
    from accessproof.demo.run import ingest_demo
    from accessproof.demo.simulate import simulate
    from accessproof.evidence import seal_control_runs
    from accessproof.ledger import init_store
    from accessproof.linking.link import link_all
    from accessproof.server.retest import retest_subject
    from accessproof.store import open_store

    root = tmp_path_factory.mktemp("web-pg")
    simulate(40, 2, 7, root / "data")
    schema = f"t_web_{uuid.uuid4().hex[:12]}"
    pg_admin().close()  # fails the session with the reason when PostgreSQL is not there
    locations = {"duckdb": str(root / "store"), "postgres": schema_url(schema)}
    settings = ServerSettings.from_dict({"scheduler": False, "retest": False})
    with pytest.MonkeyPatch.context() as mp, ExitStack() as open_clients:
        mp.setenv("ACCESSPROOF_HOME", str(root / "home"))  # a PostgreSQL store's key files
        open_clients.callback(_drop_schema, schema)
        out: dict[str, Site] = {}
        for backend, location in locations.items():
            led, _ = init_store(location)
            led.close()
            store = open_store(location)
            try:
                ingest_demo(store, root / "data")
                link_all(store)
                for _ in range(2):
                    seal_control_runs(store, assess(store).runs)
                retest_subject(store, _first_person(store), "test", controls=[RETESTED_CONTROL], relink=False)
                tokens = {role: create_token(store, role, f"web {role}") for role in ("analyst", "auditor", "admin")}
            finally:
                store.close()
            app = create_app(location, settings=settings)
            clients = {role: open_clients.enter_context(TestClient(app)) for role in tokens}
            for role, token in tokens.items():
                _sign_in(clients[role], token)
            out[backend] = Site(clients, location)
        yield out


def _drop_schema(schema: str) -> None:
    with pg_admin() as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def ids(sites) -> dict[str, str]:
    """A finding of access_before_approval and its person (finding ids are the same on both engines)."""
    page = sites["duckdb"].get("/findings?control=access_before_approval").text
    finding = re.search(r'<tr data-finding="([0-9a-f]+)"', page).group(1)
    person = re.search(r'href="/people/([^"?]+)"', page).group(1)
    return {"finding": finding, "person": person}


# path (with {finding} / {person}), role, the heading, what the page must hold
PAGES = [
    ("/", "analyst", "Compliance overview", r'<circle class="seg"'),
    ("/controls", "analyst", "Controls", r'<tr data-control="access_before_approval" data-state="failing"'),
    ("/controls/revocation_late", "analyst", None, r'id="run-now"'),
    ("/controls/access_before_approval?state=open&system=okta:acme", "auditor", None, r"<tr data-finding="),
    ("/assessments", "analyst", "Assessments", r'data-kind="retest"'),
    ("/findings", "analyst", "Findings", r"<tr data-finding="),
    ("/findings?state=all&severity=high", "analyst", "Findings", r"<tr data-finding="),
    ("/findings?state=all&person={person}", "analyst", "Findings", r"<tr data-finding="),
    ("/findings/{finding}", "auditor", None, r'data-node="approval"'),
    ("/people", "analyst", "People", r"<tr data-person="),
    ("/people?q=a", "analyst", "People", r"<tr data-person="),
    ("/people/{person}", "auditor", None, r'class="chart timeline"'),
    ("/people/{person}?at=2026-01-20", "auditor", None, r'id="point-in-time"'),
    ("/evidence", "analyst", "Evidence search", r"<option ?>revocation_late</option>"),
    ("/evidence?control=revocation_late", "analyst", "Evidence search", r'(?s)id="(events|records)">.*?<tbody>\s*<tr>'),
    ("/evidence?system=okta:acme&since=2026-01-01", "analyst", "Evidence search", r'(?s)id="events">.*?<tbody>\s*<tr>'),
    ("/evidence?subject=acme.com&until=2026-01-15", "analyst", "Evidence search", r'(?s)id="events">.*?<tbody>\s*<tr>'),
    ("/matrix", "auditor", "Traceability matrix", r"<tbody>\s*<tr"),
    ("/matrix?framework=soc2", "auditor", "Traceability matrix", r"<tbody>\s*<tr"),
    ("/packages", "auditor", "Audit packages", r'id="build-control"'),
    ("/sources", "analyst", "Sources", r'id="completeness"'),
    ("/admin", "admin", "Administration", r'data-token-id="'),
]


def _path(template: str, ids: dict[str, str]) -> str:
    return template.format(**ids)


@pytest.mark.parametrize(("path", "role", "heading", "holds"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_renders_on_postgres(sites, ids, path, role, heading, holds):
    r = sites["postgres"].get(_path(path, ids), role)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    h1 = re.search(r"<h1[^>]*>([^<]*)", r.text).group(1)
    if heading:
        assert h1 == heading
    else:
        assert h1.strip()
    assert re.search(holds, r.text), f"{path}: no {holds}"


_TODAY = datetime.now(UTC)
_MASKS = [
    (re.compile(r'name="csrf_token" value="[^"]*"'), 'name="csrf_token" value="CSRF"'),
    (re.compile(r"retest-[0-9a-f]{12}"), "retest-ID"),
    (re.compile(r"pkg-[0-9]{8}T[0-9]{6}-[0-9a-f]{8}"), "pkg-ID"),
    (re.compile(r"hold-[0-9a-f]{10}"), "hold-ID"),
    # token ids (12), assessment ids and log origins (16), run ids (20), hashes and roots (64)
    (re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{12}|[0-9a-f]{16}|[0-9a-f]{20}|[0-9a-f]{64})(?![0-9a-f])"), "HEX"),
    (re.compile(r"[A-Za-z0-9+/]{40,}={0,2}"), "B64"),  # base64 hashes, audit paths and signatures
    (re.compile(r"\d\d [A-Z][a-z]{2} \d\d:\d\d"), "RUN TIME"),  # run times on the trend and history charts
]


def _masked(html: str) -> str:
    for rx, repl in _MASKS:
        html = rx.sub(repl, html)
    # the clock time of today's runs and tokens (the demo's data is months old)
    for day in {_TODAY.strftime("%Y-%m-%d"), datetime.now(UTC).strftime("%Y-%m-%d")}:
        html = re.sub(rf"{day} \d\d:\d\d", "TODAY", html)
    return html


@pytest.mark.parametrize(("path", "role"), [(p[0], p[1]) for p in PAGES], ids=[p[0] for p in PAGES])
def test_pages_show_the_same_figures_on_postgres_as_on_duckdb(sites, ids, path, role):
    pages = {b: sites[b].get(_path(path, ids), role) for b in BACKENDS}
    assert [pages[b].status_code for b in BACKENDS] == [200, 200]
    duck, pg = (_masked(pages[b].text).splitlines() for b in BACKENDS)
    diff = list(difflib.unified_diff(duck, pg, "duckdb", "postgres", lineterm="", n=0))
    assert not diff, "\n".join(line[:300] for line in diff[:40])


def test_finding_chain_and_its_proofs_on_postgres(sites, ids):
    page = sites["postgres"].get(f"/findings/{ids['finding']}", "auditor").text
    nodes = re.findall(r'<li[^>]*data-node="(\w+)"', page)
    assert {"governance", "approval", "enforcement"} <= set(nodes), nodes
    assert "inclusion proof verified" in page
    assert "proof failed" not in page


def test_overview_on_postgres_checks_the_checkpoint_and_keeps_retests_off_the_trend(sites):
    site = sites["postgres"]
    page = site.get("/").text
    assert "signature verified" in page and "signature NOT verified" not in page
    trend = re.search(r'aria-label="Pass rate per assessment".*?</svg>', page, re.S).group(0)
    assert trend.count('class="pt"') == 2  # the two full assessments; the re-test is no point on it
    # the last assessment is the newest run that is not a re-test; the re-tests after it are counted
    runs = re.findall(r'<tr data-assessment="([^"]+)" data-kind="(\w+)"', site.get("/assessments").text)
    newest = next(i for i, (_, kind) in enumerate(runs) if kind != "retest")
    card = re.search(r'<section class="card" id="assessment">.*?</section>', page, re.S).group(0)
    assert f"<code>{runs[newest][0]}</code> ({runs[newest][1]})" in card and "retest-" not in card
    later = sum(1 for _, kind in runs[:newest] if kind == "retest")
    assert (f"<dd data-retests-since>{later} " in card) if later else ("data-retests-since" not in card)
    assert later or runs[newest][1] == "partial"  # set up with one re-test after the last full assessment


@pytest.mark.parametrize("backend", BACKENDS)
def test_retests_are_marked_and_can_be_filtered(sites, backend):
    site = sites[backend]
    every = re.findall(r'<tr data-assessment="([^"]+)" data-kind="(\w+)"', site.get("/assessments").text)
    kinds = [k for _, k in every]
    assert kinds.count("retest") == 1 and kinds.count("full") == 2, every
    assert all(a.startswith("retest-") == (k == "retest") for a, k in every)
    retests = re.findall(r'data-kind="(\w+)"', site.get("/assessments?kind=retest").text)
    assert retests == ["retest"]
    assert set(re.findall(r'data-kind="(\w+)"', site.get("/assessments?kind=full").text)) == {"full"}
    # an unknown kind is no filter (every run listed), not an error
    r = site.get("/assessments?kind=<b>")
    assert r.status_code == 200 and len(re.findall(r"<tr data-assessment=", r.text)) == len(every)
    # the control's own history shows the re-test run as one
    control = site.get(f"/controls/{RETESTED_CONTROL}").text
    assert '<span class="badge b-info">retest</span>' in control


def test_actions_on_postgres_do_what_they_do_on_duckdb(sites):
    """Run a control now, build and verify a package, make a token and a hold: same outcome on both."""
    said: dict[str, list[str]] = {}
    for backend in BACKENDS:
        site = sites[backend]
        outcome = []
        for role, path, form in (("analyst", f"/controls/{RETESTED_CONTROL}/run", {}),
                                 ("auditor", "/packages", {"mode": "control", "control": RETESTED_CONTROL}),
                                 ("admin", "/admin/holds", {"reason": "matter 7", "subject": "someone@acme.com"})):
            client = site.clients[role]
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
            r = client.post(path, data={"csrf_token": csrf, **form}, follow_redirects=False)
            assert r.status_code == 303, (backend, path, r.text[:300])
            assert "msg=" in r.headers["location"], (backend, path, r.headers["location"])
            outcome.append(_masked(client.get(r.headers["location"]).text))
        said[backend] = [re.search(r'<div class="flash ok" role="status">([^<]*)', o).group(1) for o in outcome]
    assert said["postgres"][0].startswith(f"ran {RETESTED_CONTROL}")
    assert said["postgres"][1].endswith("— verified")
    assert said["postgres"] == said["duckdb"]
    partial = re.findall(r'data-kind="(\w+)"', sites["postgres"].get("/assessments?kind=partial").text)
    assert partial == ["partial"]  # the run-now is a partial run, not a retest and not a full assessment


def test_matrix_exports_on_postgres(sites):
    got = {b: {fmt: sites[b].get(f"/matrix/export/{fmt}", "auditor") for fmt in ("csv", "xlsx", "oscal")}
           for b in BACKENDS}
    pg = got["postgres"]
    assert [pg[f].status_code for f in ("csv", "xlsx", "oscal")] == [200, 200, 200]
    assert pg["csv"].text.startswith("framework,")
    assert pg["xlsx"].content[:2] == b"PK"
    assert "assessment-results" in pg["oscal"].json()
    duck_csv, pg_csv = (_masked(got[b]["csv"].text).splitlines() for b in BACKENDS)
    diff = list(difflib.unified_diff(duck_csv, pg_csv, "duckdb", "postgres", lineterm="", n=0))
    assert not diff, "\n".join(line[:300] for line in diff[:40])
