"""The PostgreSQL store: URLs, migrations, atomic batches, concurrent writers, a killed ingest, bad input.

What both backends must do alike (accounting, re-ingest, tampering, purge) is tested once, parametrized
over ``store_url``, in tests/test_ingest.py and tests/ledger/.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from accessproof.demo.run import DEMO_FEEDS
from accessproof.demo.simulate import simulate
from accessproof.ingest import Ingestor, ingest_paths
from accessproof.ledger import init_store, open_ledger, verify_ledger
from accessproof.store import StoreError, open_store
from accessproof.store.migrations import current_version, latest, upgrade
from accessproof.store.postgres import PostgresStore, connect, number_placeholders, store_home, url_schema
from accessproof.store.schema import TABLES
from accessproof.synthetic import okta_events, write_jsonl
from tests.conftest import dev_data

from .conftest import PG_SERVER, pg_admin, schema_url

CLI = [sys.executable, "-m", "accessproof.cli"]
FIXTURES = Path(__file__).resolve().parents[1] / "sources" / "fixtures"


def _schema(url: str) -> str:
    return url_schema(url)


def _columns(store: PostgresStore, table: str) -> list[tuple[str, str]]:
    return store.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        [table],
    )


def test_url_names_the_schema_and_tables_match_the_canonical_columns(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        assert isinstance(store, PostgresStore) and store.dialect == "postgres"
        assert store.query("SELECT current_schema()") == [(_schema(pg_url),)]
        assert store.query("SELECT version, name FROM schema_version ORDER BY version") == [
            (1, "initial"), (2, "lookup_indexes"), (3, "lean_ledger_indexes"), (4, "log_origin")]
        (origin,) = store.query("SELECT value FROM ledger_meta WHERE key = 'origin'")[0]
        assert re.fullmatch(r"accessproof\.local/[0-9a-f]{16}", origin)  # named once, with the store
        led = open_ledger(store.dir, store.con)
        assert led.origin == origin
        types = {"VARCHAR": "text", "BLOB": "bytea", "TIMESTAMPTZ": "timestamp with time zone",
                 "INTEGER": "integer", "BIGINT": "bigint"}
        for table, (columns, _key) in TABLES.items():  # same names, same order: positional INSERTs work
            assert _columns(store, table) == [(c, types[t]) for c, t in columns], table
    finally:
        store.close()
    other = pg_url.replace("?options=-csearch_path%3D", "?schema=") + "_b"  # the ?schema= form
    store = open_store(other)
    try:
        assert store.query("SELECT current_schema()") == [(_schema(pg_url) + "_b",)]
    finally:
        store.close()
        admin = pg_admin()
        admin.execute(f'DROP SCHEMA "{_schema(pg_url)}_b" CASCADE')
        admin.close()


def test_an_old_schema_is_upgraded_on_open_and_keeps_its_rows(pg_url: str) -> None:
    admin = pg_admin()
    schema = _schema(pg_url)
    admin.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
    assert upgrade(admin, target=1) == (0, 1)
    admin.execute("INSERT INTO raw_records (raw_id, data) VALUES ('old', 'x'::bytea)")
    assert current_version(admin) == 1
    assert admin.execute("SELECT to_regclass('events_time')").fetchone()[0] is None

    store = open_store(pg_url, read_only=True)  # even a reading command brings it up to date
    store.close()
    assert current_version(admin) == latest() == 4
    indexes = {r[0] for r in admin.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", [schema])}
    assert {"events_time", "ledger_entries_own_types"} <= indexes  # made by 0002 and 0003
    assert "ledger_entries_retention" not in indexes  # made by 0002, dropped by 0003
    assert admin.execute("SELECT raw_id, data FROM raw_records").fetchall() == [("old", b"x")]
    assert upgrade(admin) == (4, 4)  # nothing left to do

    admin.execute("INSERT INTO schema_version (version, name) VALUES (99, 'from_the_future')")
    with pytest.raises(StoreError, match="newer than this accessproof knows"):
        open_store(pg_url)
    admin.close()


def test_bad_locations_are_one_line_errors(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no store at") as missing:
        open_store(pg_url, read_only=True)  # reading never creates a store
    assert "\n" not in str(missing.value)
    admin = pg_admin()
    assert admin.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [_schema(pg_url)]).fetchone() == (0,)
    admin.close()
    with pytest.raises(StoreError, match="cannot connect") as refused:
        open_store("postgresql://postgres:hunter2@127.0.0.1:1/test")
    assert "hunter2" not in str(refused.value) and "***" in str(refused.value)
    res = subprocess.run([*CLI, "verify", "--store", "postgresql://postgres@127.0.0.1:1/test"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: cannot connect") and res.stderr.count("\n") == 1


def test_keys_live_in_the_store_home_and_the_verifier_key_in_the_database(pg_url: str) -> None:
    led, verifier = init_store(pg_url)
    led.close()
    home = Path(os.environ["ACCESSPROOF_HOME"]) / "postgres" / f"127.0.0.1-5432-test-{_schema(pg_url)}"
    assert store_home(pg_url) == home
    key = home / "keys" / "ledger.key"
    assert key.stat().st_mode & 0o777 == 0o600
    store = open_store(pg_url)
    try:
        assert store.query("SELECT value FROM ledger_meta WHERE key = 'verifier_key'") == [(str(verifier),)]
        assert not store.query("SELECT 1 FROM ledger_meta WHERE value LIKE 'PRIVATE%'")
    finally:
        store.close()


def test_sql_runs_with_duckdb_placeholders_and_literals_left_alone(pg_url: str) -> None:
    assert number_placeholders("SELECT ?, '?', \"a?\", $$?$$, x % 2 -- ?\n, ?") == (
        "SELECT $1, '?', \"a?\", $$?$$, x % 2 -- ?\n, $2")
    assert number_placeholders("SELECT E'\\'?', %s, %(2)s") == "SELECT E'\\'?', $1, $2"
    store = open_store(pg_url)
    try:
        store.execute("CREATE TABLE t (a VARCHAR, n INTEGER)")
        for a, n in (("50%", 1), ("x?y", 2), ("plain", 3)):
            store.execute("INSERT INTO t VALUES (?, ?)", [a, n])
        assert store.query("SELECT a FROM t WHERE a LIKE '%?%' OR a LIKE ? ORDER BY a", ["50%"]) == [
            ("50%",), ("x?y",)]
        assert store.query_dicts("SELECT a, n FROM t WHERE n = ?", [3]) == [{"a": "plain", "n": 3}]
        assert list(store.stream("SELECT n FROM t ORDER BY n", size=2)) == [(1,), (2,), (3,)]
    finally:
        store.close()


def test_a_failed_batch_leaves_nothing_and_a_retry_stores_it_once(pg_url: str) -> None:
    store = open_store(pg_url)
    ing = Ingestor(store, "okta")

    def fail(_added) -> None:
        raise RuntimeError("power cut")

    ing._seal = lambda added, may_quarantine: fail(added)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_paths_with(ing, dev_data() / "okta")
    counts = store.query("SELECT (SELECT count(*) FROM raw_records), (SELECT count(*) FROM events), "
                         "(SELECT count(*) FROM quarantine), (SELECT count(*) FROM ledger_entries)")
    assert counts == [(0, 0, 0, 0)]  # records, canonical rows and ledger entries went together
    s = ingest_paths(store, "okta", [dev_data() / "okta"])
    assert (s.accepted, s.quarantined) == (50, 3)
    assert store.query("SELECT count(*) FROM ledger_entries")[0][0] == 53
    store.close()


def ingest_paths_with(ing: Ingestor, path: Path) -> None:
    for f in sorted(path.iterdir()):
        ing.ingest_file(f)
    ing.finish(time.perf_counter())


def test_two_writers_at_once_store_each_record_once(pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "okta.jsonl"
    write_jsonl(okta_events(6_000, seed=5), src)
    init_store(pg_url)[0].close()
    cmd = [*CLI, "ingest", "okta", str(src), "--json", "--batch-size", "500", "--store", pg_url]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    runs = [orjson.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert sum(r["accepted"] for r in runs) == 6_000 and all(r["read"] == 6_000 for r in runs)
    assert sum(r["duplicate"] for r in runs) == 6_000
    led = open_ledger(pg_url, create=False)
    try:
        report = verify_ledger(led, payloads=led.payloads)
        assert report.ok and report.size == 6_000, report.summary()
        assert report.checkpoints >= 1  # each run signed the tree it saw
    finally:
        led.close()


def _snapshot(url: str) -> dict:
    store = open_store(url)
    snap = {
        "raw": store.query("SELECT raw_id, sha256, data FROM raw_records ORDER BY raw_id"),
        "events": store.query("SELECT event_id, time, actor_id, target_id, action FROM events "
                              "ORDER BY event_id, time"),
        "quarantine": store.query("SELECT quarantine_id, reason FROM quarantine ORDER BY 1"),
        "sealed": store.query("SELECT record_type, record_id FROM ledger_entries ORDER BY 1, 2"),
    }
    store.close()
    return snap


def test_killed_ingest_rerun_ends_with_the_same_store(pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "okta.jsonl"
    write_jsonl(okta_events(40_000, seed=11), src)
    with open(src, "ab") as f:
        f.write(b'{"eventType": "user.session.start"}\n{"broken": \n')
    open_store(pg_url).close()
    cmd = [*CLI, "ingest", "okta", str(src), "--json", "--batch-size", "2000", "--store", pg_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watch = connect(pg_url)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if watch.execute("SELECT count(*) FROM raw_records").fetchone()[0] >= 4_000:
            break
        time.sleep(0.05)
    watch.close()
    assert proc.poll() is None, "ingest finished before it could be killed; make the input larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _snapshot(pg_url)
    assert 0 < len(partial["raw"]) < 40_000 and len(partial["raw"]) % 2_000 == 0  # whole batches only
    assert len(partial["sealed"]) == len(partial["raw"]) + len(partial["quarantine"])
    res = subprocess.run(cmd, capture_output=True, text=True)
    rerun = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert rerun["duplicate"] == len(partial["raw"])
    assert rerun["read"] == rerun["accepted"] + rerun["duplicate"] + rerun["quarantined"]
    clean = schema_url(_schema(pg_url) + "_bk")  # dropped with the test's schema
    subprocess.run([*CLI, "ingest", "okta", str(src), "--json", "--store", clean], check=True,
                   capture_output=True)
    assert _snapshot(pg_url) == _snapshot(clean)


def test_nul_characters_are_stored_and_the_raw_bytes_kept_exactly(pg_url: str, tmp_path: Path) -> None:
    event = orjson.loads((dev_data() / "okta" / "panther-tests.jsonl").read_bytes().splitlines()[0])
    event["uuid"] = "nul-test"
    event["actor"]["displayName"] = "Eve\u0000Admin"
    line = orjson.dumps(event)
    (tmp_path / "nul.jsonl").write_bytes(line + b"\n")
    store = open_store(pg_url)
    try:
        s = ingest_paths(store, "okta", [tmp_path / "nul.jsonl"])
        assert (s.accepted, s.quarantined) == (1, 0)
        assert store.query("SELECT actor_name FROM events") == [("Eve\ufffdAdmin",)]
        assert store.query("SELECT data FROM raw_records") == [(line,)]
    finally:
        store.close()


def test_server_url_default_schema_is_public() -> None:
    assert url_schema(PG_SERVER) == "public"
    assert url_schema(PG_SERVER + "?options=-c%20search_path%3Dacme,public") == "acme"


def _every_source(data: Path) -> list[tuple[str, str, list[Path], dict, str | None]]:
    """The demo's feeds (HR and QMS CSV, ServiceNow, Okta, CloudTrail, GitHub) and the rest of the source
    types from the sample and fixture files: Entra, Jira, JSON with a mapping, bad CSV rows."""
    feeds = [(label, t, [data / rel], opts, name) for label, t, rel, opts, name in DEMO_FEEDS]
    tab = FIXTURES / "tabular"
    return [*feeds,
            ("Entra", "entra", [dev_data() / "entra"], {}, None),
            ("Jira", "jira", sorted(FIXTURES.glob("jira_*.json")), {}, "jira:acme"),
            ("JSON export", "json", [tab / "qms_exceptions_sf.jsonl"], {"mapping": tab / "qms_exceptions_sf.yaml"},
             None),
            ("bad CSV rows", "csv", [tab / "qms_exceptions_bad.csv"], {"mapping": "qms_exceptions"}, None)]


def test_every_source_type_has_the_same_accounting_and_records_on_both_backends(pg_url: str,
                                                                                 tmp_path: Path) -> None:
    data = tmp_path / "data"
    simulate(40, 2, 7, data, noise_per_person_day=0.5)
    results = {}
    for name, location in (("duckdb", str(tmp_path / "store")), ("postgres", pg_url)):
        init_store(location)[0].close()
        store = open_store(location)
        try:
            counts = [(label, *(getattr(s, k) for k in ("read", "accepted", "duplicate", "quarantined")))
                      for label, t, paths, opts, source in _every_source(data)
                      for s in [ingest_paths(store, t, paths, options=opts, source_name=source)]]
            rows = {t: sorted(store.query(f"SELECT {cols} FROM {t}")) for t, cols in (
                ("raw_records", "raw_id, source, record_type, sha256"),
                ("events", "raw_id, event_id, action, actor_id, target_id, entitlement_id"),
                ("workflow_records", "raw_id, record_id, kind, subject, status"),
                ("persons", "raw_id, person_id, email, worker_type"),
                ("quarantine", "quarantine_id, reason"))}
        finally:
            store.close()
        led = open_ledger(location, create=False)
        report = verify_ledger(led, payloads=led.payloads)
        led.close()
        assert report.ok, report.summary()
        results[name] = (counts, rows, report.size)
    duck, pg = results["duckdb"], results["postgres"]
    for d, p in zip(duck[0], pg[0], strict=True):
        assert d == p and d[1] == d[2] + d[3] + d[4], (d, p)
    assert any(c[4] for c in duck[0])  # some records were quarantined
    for table in duck[1]:
        assert duck[1][table] == pg[1][table], table
    assert duck[2] == pg[2] == sum(c[2] + c[4] for c in duck[0])  # every new record and quarantine sealed
