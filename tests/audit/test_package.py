"""Audit packages built from a small demo organisation (60 people, 3 months; ingested with a signing key,
linked, assessed and sealed once per session), with hostile values planted where logs carry them: an HR
display name that is HTML (`<img src=x onerror=alert(1)>`) and one that is a spreadsheet formula, and
sample item summaries starting with = + - @.

What a package must hold is checked against the store itself (raw bytes exactly as stored, normalised rows,
the population count against a direct count), and every inclusion proof, the checkpoint and the consistency
proof are checked with the test suite's own independent RFC 9162 / signed-note code
(``tests/ledger/test_ledger_cli.py``), not with accessproof's.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import random
import zipfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.ledger.test_ledger_cli import (
    checkpoint_fields,
    open_signed_note,
    root_from_path,
    roots_from_consistency,
)

PEOPLE, MONTHS = 60, 3
HOSTILE_HTML = "<img src=x onerror=alert(1)>"
HOSTILE_FORMULA = '=HYPERLINK("http://evil.example","click")'
FORMULA_SUMMARIES = ("=1+2", "+SUM(A1:A2)", "-3+4", "@cmd")
CONTROL = "revocation_late"
runner = CliRunner()
_BUILT: dict[str, SimpleNamespace] = {}


def _plant_hostile_names(workers: Path) -> list[str]:
    """Rename the first two leavers in the HR export; returns their employee ids."""
    rows = list(csv.reader(io.StringIO(workers.read_text(encoding="utf-8"))))
    head = rows[0]
    emp, name, term = head.index("Employee ID"), head.index("Legal Name"), head.index("Termination Date")
    leavers = [r for r in rows[1:] if r[term]][:2]
    for r, value in zip(leavers, (HOSTILE_HTML, HOSTILE_FORMULA), strict=True):
        r[name] = value
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    workers.write_text(buf.getvalue(), encoding="utf-8")
    return [r[emp] for r in leavers]


def _freeze(store: Any, pop: Any) -> int:
    """Seal a population as ``accessproof sample`` does: a ``population`` entry, its payload kept."""
    from accessproof.ledger import open_ledger

    data = pop.payload_bytes()
    ledger = open_ledger(store.dir, store.con)
    with ledger.storage.transaction():
        ledger.storage.put_payloads([("population", f"{CONTROL}:test", data)])
        idx = ledger.seal_columns(["population"], [f"{CONTROL}:test"], ["accessproof:audit"], [datetime.now(UTC)],
                                  [data], kinds=[CONTROL])
    return idx


def _sample_doc(pop: Any, idx: int, hostile: list[str]) -> dict[str, Any]:
    """A sample file in the shared contract's format: the hostile leavers plus seeded others."""
    mine = [i for i in pop.items if i.subject in hostile and i.key.startswith("trigger:termination")]
    rest = sorted(i for i in (set(range(len(pop.items)))) if pop.items[i] not in mine)
    picked = mine + [pop.items[i] for i in sorted(random.Random(7).sample(rest, 8))]
    items = []
    for n, it in enumerate(picked):
        summary = FORMULA_SUMMARIES[n] if n < len(FORMULA_SUMMARIES) else it.summary
        items.append({"key": it.key, "subject": it.subject, "time": it.time.isoformat() if it.time else None,
                      "summary": summary, "raw_ids": it.raw_ids})
    return {"format": "accessproof.sample/1",
            "control": {"id": CONTROL, "title": "Access removed late", "frequency": "daily"},
            "period": pop.period(),
            "population": {"definition": pop.definition, "query_sql": pop.query_sql, "count": pop.count,
                           "digest": pop.digest, "ledger_index": idx, "payload": pop.payload()},
            "method": {"seed": 7, "size": len(items), "algorithm": "test: hostile leavers + random.Random(7)",
                       "guidance": "test fixture"},
            "items": items}


def build_demo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The demo store with hostile names, a sealed population and sample file, and the three packages
    (sample with --since-checkpoint, control, person); built once per session, shared by both test files."""
    if "demo" in _BUILT:
        return _BUILT["demo"]
    from accessproof.audit.package import build_package
    from accessproof.audit.population import population
    from accessproof.controls import assess
    from accessproof.demo.run import ingest_demo
    from accessproof.demo.simulate import simulate
    from accessproof.evidence import seal_control_runs
    from accessproof.ledger import init_store
    from accessproof.linking.link import link_all
    from accessproof.store import open_store

    root = tmp_path_factory.mktemp("package-demo")
    data, store_dir = root / "data", root / "store"
    simulate(PEOPLE, MONTHS, 7, data)
    hostile = _plant_hostile_names(data / "hr" / "workers.csv")
    ledger, verifier = init_store(store_dir)
    ledger.close()
    store = open_store(store_dir)
    try:
        ingest_demo(store, data)
        since = store.query("SELECT note FROM ledger_checkpoints ORDER BY size LIMIT 1")[0][0]
        link_all(store)
        seal_control_runs(store, assess(store).runs)
        first, last = store.query("SELECT min(time), max(time) FROM events")[0]
        pop = population(store, CONTROL, first - timedelta(days=1), last + timedelta(days=1))
        doc = _sample_doc(pop, _freeze(store, pop), hostile)
        sample = root / "sample.json"
        sample.write_text(json.dumps(doc, indent=2, sort_keys=True), encoding="utf-8")
        pkgs = root / "packages"
        results = {
            "sample": build_package(store, pkgs / "sample.zip", sample=sample, since_checkpoint=since),
            "control": build_package(store, pkgs / "control.zip", control=CONTROL),
            "person": build_package(store, pkgs / "person.zip", person=hostile[0]),
        }
    finally:
        store.close()
    _BUILT["demo"] = SimpleNamespace(root=root, store_dir=store_dir, vkey=str(verifier), hostile=hostile,
                                     sample=sample, doc=doc, since=since, population=pop, results=results,
                                     packages={k: r.path for k, r in results.items()})
    return _BUILT["demo"]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return build_demo(tmp_path_factory)


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _ro_store(demo: SimpleNamespace) -> Any:
    from accessproof.store import open_store

    return open_store(demo.store_dir, read_only=True)


# ---------------------------------------------------------------- contents


def test_sample_package_holds_every_part(demo: SimpleNamespace) -> None:
    files = read_zip(demo.packages["sample"])
    manifest = json.loads(files["manifest.json"])
    for name in ("manifest.sig", "VERIFY.md", "verify.py", "key/ledger.vkey", "ledger/checkpoint.note",
                 "ledger/since-checkpoint.note", "ledger/consistency.json", "sample/sample.json",
                 "population/population.json", "population/proof.json", "items.csv", "findings.csv",
                 "package.xlsx", "items.json", "workpaper/index.html", "SHA256SUMS",
                 f"controls/{CONTROL}/control.yaml", f"controls/{CONTROL}/query.sql", f"controls/{CONTROL}/run.json",
                 f"controls/{CONTROL}/results.json"):
        assert name in files, name
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sig"}
    for name, meta in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == meta["sha256"] and len(files[name]) == meta["size"]
    assert manifest["scope"]["mode"] == "sample" and manifest["scope"]["control"] == CONTROL
    assert manifest["scope"]["items"] == len(demo.doc["items"])
    assert manifest["tool"]["name"] == "accessproof" and manifest["created"].endswith("Z")
    assert files["key/ledger.vkey"].decode().strip() == demo.vkey
    assert files["sample/sample.json"] == demo.sample.read_bytes()
    pages = [n for n in files if n.startswith("workpaper/item-")]
    assert len(pages) == len(demo.doc["items"])


def test_every_item_raw_record_is_in_raw_and_normalised_form(demo: SimpleNamespace) -> None:
    files = read_zip(demo.packages["sample"])
    manifest = json.loads(files["manifest.json"])
    by_id = {s["record_id"]: s for s in manifest["sealed"] if s["record_type"] == "raw"}
    wanted = {r for it in demo.doc["items"] for r in it["raw_ids"]}
    assert wanted <= set(by_id), "every raw record a sampled item names is sealed in the package"
    s = _ro_store(demo)
    try:
        stored = dict(s.query("SELECT raw_id, data FROM raw_records WHERE raw_id IN (SELECT unnest(?))",
                              [sorted(wanted)]))
        events = {r[0]: r[1] for r in s.query("SELECT raw_id, event_id FROM events WHERE raw_id IN "
                                              "(SELECT unnest(?))", [sorted(wanted)])}
    finally:
        s.close()
    for raw_id in wanted:
        assert files[by_id[raw_id]["payload"]] == bytes(stored[raw_id])  # byte for byte as ingested
        normalised = json.loads(files[by_id[raw_id]["payload"].rsplit("/", 1)[0] + "/normalised.json"])
        assert normalised["raw_id"] == raw_id
        if raw_id in events:
            assert normalised["events"][0]["event_id"] == events[raw_id]
        else:
            assert normalised.get("workflow_records") or normalised.get("persons")


def test_inclusion_proofs_verify_with_the_independent_implementation(demo: SimpleNamespace) -> None:
    for kind in ("sample", "control", "person"):
        files = read_zip(demo.packages[kind])
        manifest = json.loads(files["manifest.json"])
        origin, size, root = checkpoint_fields(open_signed_note(files["ledger/checkpoint.note"].decode(), demo.vkey))
        assert (origin, size, base64.b64encode(root).decode()) == (
            manifest["log"]["origin"], manifest["log"]["tree_size"], manifest["log"]["root"])
        assert manifest["sealed"]
        for item in manifest["sealed"]:
            proof = json.loads(files[item["proof"]])
            entry = base64.b64decode(proof["entry"])
            leaf = hashlib.sha256(b"\x00" + entry).digest()
            path = [base64.b64decode(h) for h in proof["inclusion_path"]]
            assert proof["tree_size"] == size and proof["index"] == item["index"]
            assert root_from_path(proof["index"], size, leaf, path) == root, item["proof"]
            sealed = json.loads(entry)
            assert (sealed["type"], sealed["id"]) == (item["record_type"], item["record_id"])
            payload = files[item["payload"]]
            assert hashlib.sha256(bytes.fromhex(sealed["salt"]) + payload).hexdigest() == sealed["payload_sha256"]
        # the manifest signature: a signed note naming the manifest's hash
        text = open_signed_note(files["manifest.sig"].decode(), demo.vkey)
        assert text == f"accessproof.package/1\nmanifest.json sha256 {hashlib.sha256(files['manifest.json']).hexdigest()}\n"


def test_consistency_from_the_auditors_checkpoint(demo: SimpleNamespace) -> None:
    files = read_zip(demo.packages["sample"])
    assert files["ledger/since-checkpoint.note"].decode() == demo.since
    _, old_size, old_root = checkpoint_fields(open_signed_note(demo.since, demo.vkey))
    _, size, root = checkpoint_fields(open_signed_note(files["ledger/checkpoint.note"].decode(), demo.vkey))
    proof = json.loads(files["ledger/consistency.json"])
    assert (proof["old_size"], proof["new_size"]) == (old_size, size) and old_size < size
    path = [base64.b64decode(h) for h in proof["consistency_path"]]
    assert roots_from_consistency(old_size, size, path, old_root) == (old_root, root)
    assert "ledger/consistency.json" not in read_zip(demo.packages["control"])  # only when asked for


def test_population_count_matches_a_direct_count(demo: SimpleNamespace) -> None:
    files = read_zip(demo.packages["sample"])
    payload = json.loads(files["population/population.json"])
    period = [demo.doc["period"]["from"], demo.doc["period"]["to"]]
    s = _ro_store(demo)
    try:
        leavers = s.query("""
            SELECT count(*) FROM (SELECT DISTINCT w.record_id, s.person_id FROM wf_current w
                                  JOIN workflow_subjects s ON s.raw_id = w.raw_id
                                  WHERE w.kind = 'hr_event' AND lower(w.event_type) = 'termination'
                                    AND s.person_id IS NOT NULL AND w.effective >= ? AND w.effective < ?)""", period)[0][0]
        unannounced = s.query("""
            SELECT count(*) FROM persons_current p WHERE p.terminated >= ? AND p.terminated < ?
              AND p.person_id NOT IN (SELECT s.person_id FROM wf_current w JOIN workflow_subjects s
                                      ON s.raw_id = w.raw_id WHERE w.kind = 'hr_event'
                                      AND lower(w.event_type) = 'termination' AND s.person_id IS NOT NULL)""",
                              period)[0][0]
        end_dates = s.query("""SELECT count(*) FROM (SELECT DISTINCT trigger_record_id, person_id FROM removal_links
                               WHERE trigger_kind = 'end-date' AND due_at >= ? AND due_at < ?)""", period)[0][0]
    finally:
        s.close()
    keys = payload["keys"]
    assert payload["count"] == len(keys) == demo.population.count == leavers + unannounced + end_dates
    assert leavers > 0 and end_dates > 0
    assert sum(k.startswith("trigger:termination:") for k in keys) == leavers + unannounced
    digest = hashlib.sha256(json.dumps(sorted(keys), separators=(",", ":")).encode()).hexdigest()
    assert digest == demo.doc["population"]["digest"]
    assert {it["key"] for it in demo.doc["items"]} <= set(keys)


def test_control_package_proves_the_latest_run_and_its_results(demo: SimpleNamespace) -> None:
    files = read_zip(demo.packages["control"])
    manifest = json.loads(files["manifest.json"])
    run = json.loads(files[f"controls/{CONTROL}/run.json"])
    rows = json.loads(files[f"controls/{CONTROL}/results.json"])
    lines = [f"{r['finding_id']}|{r['status']}|{r['reason'] or ''}|{r['evidence_ids_json']}"
             for r in sorted(rows, key=lambda r: r["finding_id"])]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == run["results_digest"]
    assert run["control_id"] == CONTROL and run["population"] == len(rows)
    alarms = [r for r in rows if r["status"] == "alarm"]
    items = json.loads(files["items.json"])
    assert [i["key"] for i in items] == sorted(r["finding_id"] for r in alarms) and alarms
    assert any(s["record_type"] == "control_result" and s["record_id"] == run["run_id"] for s in manifest["sealed"])
    findings = list(csv.DictReader(io.StringIO(files["findings.csv"].decode())))
    assert {f["finding_id"] for f in findings} >= {r["finding_id"] for r in alarms}


def test_person_package_follows_each_access(demo: SimpleNamespace) -> None:
    files = read_zip(demo.packages["person"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["scope"] == {**manifest["scope"], "mode": "person", "person": demo.hostile[0]}
    items = json.loads(files["items.json"])
    kinds = {i["key"].split(":")[0] for i in items}
    assert {"person", "access"} <= kinds
    s = _ro_store(demo)
    try:
        grants = {r[0] for r in s.query("SELECT grant_raw_id FROM access_intervals WHERE person_id = ? "
                                        "AND grant_raw_id IS NOT NULL", [demo.hostile[0]])}
        terminations = {r[0] for r in s.query(
            "SELECT w.raw_id FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id "
            "WHERE s.person_id = ? AND w.kind = 'hr_event' AND lower(w.event_type) = 'termination'",
            [demo.hostile[0]])}
    finally:
        s.close()
    proven = {x["record_id"] for x in manifest["sealed"]}
    assert grants <= proven and terminations and terminations <= proven


def test_chain_shows_request_approval_execution_removal(demo: SimpleNamespace) -> None:
    """A sampled end-date item: the request, its approval, the grant it justified and the removal it
    required, with times in that order, each with evidence in the package."""
    files = read_zip(demo.packages["sample"])
    items = json.loads(files["items.json"])
    full = [i for i in items if i["key"].startswith("trigger:end-date")
            and all(i["chain"]["by_stage"][s] for s in ("request", "approval", "execution", "removal"))]
    assert full, "no end-date item with the whole chain in the sample"
    chain = full[0]["chain"]["by_stage"]
    request, approval = chain["request"][0], chain["approval"][0]
    grant, removal = chain["execution"][0], chain["removal"][-1]
    assert request["time"] <= approval["time"] <= grant["time"] <= removal["time"]
    assert grant["basis"] in ("explicit", "inferred") and grant["status"] == "justified"
    assert removal["details"]["required_by"].startswith("end-date")
    manifest = json.loads(files["manifest.json"])
    proven = {x["record_id"] for x in manifest["sealed"]}
    assert {request["raw_id"], approval["raw_id"], grant["raw_id"], removal["raw_id"]} <= proven
    page = files[f"workpaper/item-{items.index(full[0]) + 1:04d}.html"].decode()
    for step in (request, approval, grant, removal):
        assert f'href="../evidence/{step["raw_id"]}/raw.' in page


def test_a_sample_drawn_by_accessproof_sample_packages_and_verifies(demo: SimpleNamespace, tmp_path: Path) -> None:
    """The shared contract end to end: ``take_sample`` writes the file, ``build_package`` reads it."""
    import shutil

    from accessproof.audit.package import build_package
    from accessproof.audit.sample import take_sample
    from accessproof.audit.verify_package import verify_package
    from accessproof.store import open_store

    store_dir = tmp_path / "store"
    shutil.copytree(demo.store_dir, store_dir)
    start, end = (datetime.fromisoformat(demo.doc["period"][k].replace("Z", "+00:00")) for k in ("from", "to"))
    store = open_store(store_dir)
    try:
        drawn = take_sample(store, "access_without_approval", start, end, seed=11)
        sample = tmp_path / "sample.json"
        sample.write_bytes(drawn.to_json())
        result = build_package(store, tmp_path / "pkg.zip", sample=sample)
    finally:
        store.close()
    report = verify_package(result.path, demo.vkey)
    assert report.ok, report.failures
    assert result.items == drawn.size == len(drawn.items) > 0
    assert report.counts["population keys"] == drawn.population.count
    items = json.loads(read_zip(result.path)["items.json"])
    assert [i["key"] for i in items] == [i.key for i in drawn.items]


def test_purged_and_missing_payloads_are_said_and_still_proven(demo: SimpleNamespace, tmp_path: Path) -> None:
    """After a retention purge the entries stay proven and the package says the payloads were purged (a
    warning); a payload gone without a sealed purge manifest is missing evidence (a failure)."""
    import shutil

    from accessproof.audit.package import build_package
    from accessproof.audit.verify_package import verify_package
    from accessproof.ledger import open_ledger
    from accessproof.ledger.retention import purge
    from accessproof.store import open_store

    store_dir = tmp_path / "store"
    shutil.copytree(demo.store_dir, store_dir)
    raws = sorted(r for it in demo.doc["items"] for r in it["raw_ids"])
    store = open_store(store_dir)
    try:
        store.execute("UPDATE raw_records SET data = NULL WHERE raw_id = ?", [raws[0]])
        ledger = open_ledger(store_dir, store.con)
        purged = purge(ledger, ledger.payloads, now=datetime(2200, 1, 1, tzinfo=UTC))
        assert purged.purge, "nothing was old enough to purge"
        result = build_package(store, tmp_path / "pkg.zip", sample=demo.sample)
    finally:
        store.close()
    files = read_zip(result.path)
    manifest = json.loads(files["manifest.json"])
    gone = {s["record_id"] for s in manifest["sealed"] if s["record_type"] == "raw" and s["payload"] is None}
    assert raws[0] in gone and len(gone) > 1
    assert not [n for n in files if n.startswith(tuple(f"evidence/{r}/raw." for r in gone))]
    said = "\n".join(result.warnings)
    assert f"raw record {raws[0]}: payload missing from the store and no sealed purge manifest lists it" in said
    assert "payload purged under retention" in said
    report = verify_package(result.path, demo.vkey)
    assert len([w for w in report.warnings if "its payload was purged under retention" in w]) == len(gone) - 1
    assert report.failures == [f"evidence/{raws[0]}/proof.json: raw {raws[0]} is proven but its payload is missing "
                               "and no sealed purge manifest lists it"]


def test_packages_from_a_postgresql_store_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's backend: a small demo ingested into PostgreSQL packages and verifies in all three modes."""
    import uuid

    from accessproof.audit.package import build_package
    from accessproof.audit.sample import take_sample
    from accessproof.audit.verify_package import verify_package
    from accessproof.controls import assess
    from accessproof.demo.run import ingest_demo
    from accessproof.demo.simulate import simulate
    from accessproof.evidence import seal_control_runs
    from accessproof.ledger import init_store
    from accessproof.linking.link import link_all
    from accessproof.store import open_store
    from tests.store.conftest import pg_admin, schema_url

    monkeypatch.setenv("ACCESSPROOF_HOME", str(tmp_path / "home"))
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = schema_url(schema)
    simulate(40, 2, 7, tmp_path / "data")
    ledger, verifier = init_store(url)
    ledger.close()
    store = open_store(url)
    try:
        ingest_demo(store, tmp_path / "data")
        since = store.query("SELECT note FROM ledger_checkpoints ORDER BY size LIMIT 1")[0][0]
        link_all(store)
        seal_control_runs(store, assess(store).runs)
        first, last = store.query("SELECT min(time), max(time) FROM events")[0]
        drawn = take_sample(store, CONTROL, first - timedelta(days=1), last + timedelta(days=1), seed=3)
        (tmp_path / "sample.json").write_bytes(drawn.to_json())
        person = store.query("SELECT min(person_id) FROM access_intervals WHERE grant_raw_id IS NOT NULL")[0][0]
        built = [build_package(store, tmp_path / "s.zip", sample=tmp_path / "sample.json", since_checkpoint=since),
                 build_package(store, tmp_path / "c.zip", control=CONTROL),
                 build_package(store, tmp_path / "p.zip", person=person)]
    finally:
        store.close()
        admin = pg_admin()
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    for result in built:
        report = verify_package(result.path, str(verifier))
        assert report.ok and report.counts["inclusion proofs"] == result.proofs > 0, report.failures
    assert verify_package(built[0].path, str(verifier)).counts["population keys"] == drawn.population.count


# ---------------------------------------------------------------- hostile content


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_workpaper_escapes_a_hostile_display_name(demo: SimpleNamespace) -> None:
    for kind in ("sample", "person"):
        files = read_zip(demo.packages[kind])
        pages = {n: files[n].decode() for n in files if n.startswith("workpaper/")}
        shown = [n for n, p in pages.items() if "&lt;img src=x onerror=alert(1)&gt;" in p]
        assert shown, f"the hostile display name is not shown on any {kind} page"
        for name, page in pages.items():
            assert HOSTILE_HTML not in page, name
            parser = _Tags()
            parser.feed(page)
            assert not [t for t, _ in parser.tags if t in ("img", "script", "iframe", "object")], name
            assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")], name
            assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_csv_and_xlsx_cells_are_formula_safe(demo: SimpleNamespace) -> None:
    from openpyxl import load_workbook

    files = read_zip(demo.packages["sample"])
    rows = list(csv.DictReader(io.StringIO(files["items.csv"].decode())))
    summaries = {r["summary"] for r in rows}
    for value in FORMULA_SUMMARIES:
        assert "'" + value in summaries and value not in summaries
    names = {r["display_name"] for r in rows}
    assert "'" + HOSTILE_FORMULA in names and HOSTILE_FORMULA not in names
    for r in rows:
        for v in r.values():
            assert not v.startswith(("=", "+", "-", "@")), v
    wb = load_workbook(io.BytesIO(files["package.xlsx"]))
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    assert not c.value.startswith(("=", "+", "-", "@")), c.value
    assert "'" + HOSTILE_FORMULA in {c.value for c in wb["Items"]["D"]}


# ---------------------------------------------------------------- bad input


def test_bad_input_is_one_clear_error(demo: SimpleNamespace, tmp_path: Path) -> None:
    from accessproof.audit.package import PackageError, build_package
    from accessproof.ledger.api import load_signer
    from accessproof.ledger.note import Signer, format_checkpoint
    from accessproof.store import open_store

    not_json = tmp_path / "bad.json"
    not_json.write_text("{nope", encoding="utf-8")
    wrong_format = tmp_path / "other.json"
    wrong_format.write_text('{"format": "something/1"}', encoding="utf-8")
    ghost = tmp_path / "ghost.json"
    ghost.write_text(json.dumps({**demo.doc, "items": [{**demo.doc["items"][0], "raw_ids": ["no-such-raw"]}]}),
                     encoding="utf-8")
    other_log = Signer.generate("elsewhere.example/log").sign(format_checkpoint("elsewhere.example/log", 5, bytes(32)))
    signer = load_signer(demo.store_dir)
    assert signer is not None
    store = open_store(demo.store_dir)
    try:
        size = store.query("SELECT count(*) FROM ledger_entries")[0][0]
        future = signer.sign(format_checkpoint(signer.name, size + 10, bytes(32)))
        cases = [
            ({"sample": not_json}, "is not JSON"),
            ({"sample": wrong_format}, "is not a sample file"),
            ({"sample": tmp_path / "absent.json"}, "cannot read sample file"),
            ({"sample": ghost}, "names raw record no-such-raw, which this store does not hold"),
            ({"control": "no_such_control"}, "no completed run"),
            ({"person": "nobody@nowhere.example"}, "no single person matches"),
            ({"control": CONTROL, "person": "x"}, "exactly one of"),
            ({"control": CONTROL, "since_checkpoint": other_log}, "checkpoint rejected"),
            ({"control": CONTROL, "since_checkpoint": "not a note"}, "checkpoint rejected"),
            ({"control": CONTROL, "since_checkpoint": future}, "rolled back"),
        ]
        for kwargs, message in cases:
            with pytest.raises(PackageError) as err:
                build_package(store, tmp_path / "out.zip", **kwargs)
            assert message in str(err.value) and "\n" not in str(err.value), (kwargs, str(err.value))
            assert not (tmp_path / "out.zip").exists()
    finally:
        store.close()


def test_cli_package_and_errors(demo: SimpleNamespace, tmp_path: Path) -> None:
    from accessproof.audit.package_commands import build_app

    app = build_app()
    out, since = tmp_path / "cli.zip", tmp_path / "held.note"
    since.write_text(demo.since, encoding="utf-8")
    ok = runner.invoke(app, ["package", "--store", str(demo.store_dir), "--control", CONTROL, "--out", str(out),
                             "--since-checkpoint", str(since)])
    assert ok.exit_code == 0, ok.output
    assert "items" in ok.output and "inclusion proofs against tree size" in ok.output and out.exists()
    assert "ledger/consistency.json" in read_zip(out)
    checked = runner.invoke(app, ["verify-package", str(out), "--key", demo.vkey])
    assert checked.exit_code == 0 and checked.output.startswith("ok:") and "1 consistency proofs" in checked.output
    unpinned = runner.invoke(app, ["verify-package", str(out)])
    assert unpinned.exit_code == 0 and "warning: using the key inside the package" in unpinned.output
    for args in (["package", "--store", str(demo.store_dir), "--out", str(tmp_path / "x.zip")],
                 ["package", "--store", str(tmp_path / "nostore"), "--control", CONTROL, "--out", str(tmp_path / "y.zip")],
                 ["package", "--store", str(demo.store_dir), "--sample", str(tmp_path / "absent.json"),
                  "--out", str(tmp_path / "z.zip")]):
        bad = runner.invoke(app, args)
        assert bad.exit_code == 2, (args, bad.output)
        lines = [ln for ln in bad.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in bad.output, bad.output
