"""Findings parity: the demo organisation ingested into DuckDB and into PostgreSQL, linked and assessed on
each, gives the same identities, links, findings (stable ids, resources, statuses, reasons, evidence) and
control results — on the full demo (200 people, 6 months), not a toy."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _reachable() -> None:
    psycopg = pytest.importorskip("psycopg")
    pytest.importorskip("accessproof.store.postgres")
    try:
        psycopg.connect(PG_URL, connect_timeout=5).close()
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {str(e).splitlines()[0]}")


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """(duckdb store, postgres store, {engine: first assessment}) for the demo, linked and assessed once."""
    _reachable()
    import psycopg

    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store, ingest_demo
    from accessproof.linking.link import link_all
    from accessproof.store import open_store
    from accessproof.store.dialect import compat_problems

    built = build_demo_store(tmp_path_factory.mktemp("parity"), seal=False)
    duck = open_store(built.store_dir)
    schema = f"ap_parity_{uuid.uuid4().hex[:8]}"
    pg = open_store(f"{PG_URL}?schema={schema}")
    try:
        assert pg.dialect == "postgres" and compat_problems(pg.con) == []  # installed on open
        ingest_demo(pg, built.data, seal=False)
        assessments = {}
        for name, store in (("duckdb", duck), ("postgres", pg)):
            link_all(store)
            assessments[name] = assess(store)
        yield duck, pg, assessments
    finally:
        duck.close()
        pg.close()
        with psycopg.connect(PG_URL, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _norm(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_norm(x) for x in v)
    if isinstance(v, Decimal):  # a sum of integers: HUGEINT in DuckDB, numeric in PostgreSQL
        return int(v) if v == v.to_integral_value() else v
    return v


def rows(store, sql: str, params: list | None = None) -> Counter:
    return Counter(tuple(_norm(x) for x in r) for r in store.query(sql, params))


def assert_same(duck, pg, sql: str, params: list | None = None) -> int:
    d, p = rows(duck, sql, params), rows(pg, sql, params)
    only_duck, only_pg = d - p, p - d
    assert not only_duck and not only_pg, (
        f"{sum(only_duck.values())} row(s) only on DuckDB, e.g. {list(only_duck)[:2]}; "
        f"{sum(only_pg.values())} only on PostgreSQL, e.g. {list(only_pg)[:2]}")
    return sum(d.values())


def test_both_engines_hold_the_same_records(engines):
    duck, pg, _ = engines
    for table in ("events", "workflow_records", "persons"):
        assert assert_same(duck, pg, f"SELECT count(*), count(DISTINCT raw_id) FROM {table}") == 1
    assert duck.query("SELECT count(*) FROM events")[0][0] > 100_000


@pytest.mark.parametrize("table", ["person_keys", "accounts", "identity_conflicts", "workflow_subjects"])
def test_identity_resolution_is_identical(engines, table):
    duck, pg, _ = engines
    assert_same(duck, pg, f"SELECT * FROM {table}")


@pytest.mark.parametrize("table", ["access_events", "access_intervals", "wf_requests", "wf_scope_targets",
                                   "event_refs", "links", "unlinked_grants", "unexecuted_approvals",
                                   "removal_links", "removal_latency"])
def test_linking_is_identical(engines, table):
    duck, pg, _ = engines
    n = assert_same(duck, pg, f"SELECT * FROM {table}")
    if table in ("links", "access_intervals", "removal_links"):
        assert n > 100


def test_findings_are_identical(engines):
    """The Done-when of issue 8: control id, stable finding id, resource, status and reason, for every finding
    (and the evidence ids and dimensions that go with them)."""
    duck, pg, _ = engines
    n = assert_same(duck, pg, "SELECT control_id, finding_id, resource, state, reason, evidence_ids_json, "
                              "dimensions_json, person_id, system, exception_id FROM findings")
    assert n > 100
    alarming = {r[0] for r in duck.query("SELECT DISTINCT control_id FROM findings")}
    assert len(alarming) >= 15


def test_every_tested_row_is_identical(engines):
    duck, pg, assessments = engines
    for name in ("duckdb", "postgres"):
        runs = assessments[name].runs
        assert len(runs) == 27 and not assessments[name].errors, [r["error_message"] for r in runs
                                                                   if r["status"] == "error"]
    sql = """SELECT control_id, finding_id, resource, status, reason, evidence_ids_json, dimensions_json
             FROM control_results WHERE run_id IN (SELECT run_id FROM control_runs WHERE assessment_id = ?)"""
    d = rows(duck, sql, [assessments["duckdb"].assessment_id])
    p = rows(pg, sql, [assessments["postgres"].assessment_id])
    assert d == p
    assert sum(d.values()) > 5000


def test_control_results_match(engines):
    """Per control: population, counts by status and the digest of every row it returned."""
    _, _, assessments = engines

    def per_control(a):
        return {r["control_id"]: (r["population"], r["ok"], r["alarm"], r["skip"], r["info"], r["error"],
                                  r["results_digest"]) for r in a.runs}

    d, p = per_control(assessments["duckdb"]), per_control(assessments["postgres"])
    assert d == p
    assert assessments["duckdb"].counts() == assessments["postgres"].counts()


def test_reads_are_identical(engines):
    """What the CLI and the API show: findings, timelines, access at a time, identities, removals, sources."""
    from accessproof import queries
    from accessproof.controls.findings import list_findings
    from accessproof.identity.resolve import list_identities, orphans, ownerless_service_accounts
    from accessproof.linking.access import access_at
    from accessproof.linking.link import removal_latency, unlinked_grants
    from accessproof.linking.timeline import timeline

    duck, pg, _ = engines
    moving = ("first_seen", "last_seen", "first_run_id", "last_run_id", "as_of", "resolved_at")

    def stable(fs):
        return [{k: v for k, v in f.items() if k not in moving} for f in fs]

    assert stable(list_findings(duck)) == stable(list_findings(pg))
    by_requirement = stable(list_findings(duck, framework="soc2:CC6.2"))
    assert by_requirement and by_requirement == stable(list_findings(pg, framework="soc2:CC6.2"))
    people = [r[0] for r in duck.query(
        "SELECT person_id FROM links WHERE person_id IS NOT NULL GROUP BY person_id "
        "ORDER BY count(*) DESC, person_id LIMIT 3")]
    for person in people:
        assert timeline(duck, person) == timeline(pg, person)
    start, end = duck.query("SELECT min(time), max(time) FROM events")[0]
    middle = start + (end - start) / 2
    assert access_at(duck, middle) == access_at(pg, middle)
    assert access_at(duck, middle - timedelta(days=30), system="okta") == \
        access_at(pg, middle - timedelta(days=30), system="okta")
    for read in (list_identities, orphans, ownerless_service_accounts, removal_latency, unlinked_grants):
        assert read(duck) == read(pg), read.__name__
    for read in (queries.source_quality, queries.quarantine_summary, queries.counts):
        assert read(duck) == read(pg), read.__name__
    assert queries.events(duck, source="okta", limit=20) == queries.events(pg, source="okta", limit=20)


def test_matrix_is_identical(engines):
    from accessproof.audit.matrix import build_matrix

    duck, pg, _ = engines
    moving = {"latest_run_id", "latest_assessment_id", "latest_started", "latest_finished",
              "latest_run_ledger_index"}
    d, p = build_matrix(duck), build_matrix(pg)
    assert d.summary == p.summary
    assert [{k: v for k, v in r.items() if k not in moving} for r in d.rows] == \
        [{k: v for k, v in r.items() if k not in moving} for r in p.rows]


def test_findings_keep_their_life_across_assessments(engines):
    """A second assessment on each engine: every finding keeps its id and first_seen, states agree."""
    from accessproof.controls import assess

    duck, pg, _ = engines
    before = {name: dict(s.query("SELECT finding_id, first_seen FROM findings")) for name, s in
              (("duckdb", duck), ("postgres", pg))}
    for store in (duck, pg):
        assess(store)
    assert_same(duck, pg, "SELECT finding_id, state, reopened, reason FROM findings")
    for name, store in (("duckdb", duck), ("postgres", pg)):
        assert dict(store.query("SELECT finding_id, first_seen FROM findings")) == before[name]
