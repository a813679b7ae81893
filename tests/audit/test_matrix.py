"""The traceability matrix on a small demo organisation (60 people, 3 months; built, linked, assessed twice and
sealed once per module): one row per (requirement, control) pair, the latest results and finding counts of the
store's own tables, spreadsheet and HTML safety against hostile values, a valid OSCAL assessment-results
document, and the ``accessproof matrix`` command's one-line errors."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import uuid
import zipfile
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accessproof.audit.commands import build_app
from accessproof.audit.matrix import (
    COLUMNS,
    EXCEPTION_COLUMNS,
    build_matrix,
    to_csv,
    to_html,
    to_json,
    to_xlsx,
)
from accessproof.audit.oscal import UUID_NAMESPACE, oscal_control_id, to_oscal_json
from accessproof.controls.engine import load_catalogue
from accessproof.store import open_store

PEOPLE, MONTHS = 60, 3
HOSTILE = '=HYPERLINK("http://x","click")'  # the demo simulator puts it in a QMS exception justification
runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store
    from accessproof.evidence import seal_control_runs
    from accessproof.linking.link import link_all

    out = tmp_path_factory.mktemp("matrix-demo")
    built = build_demo_store(out, people=PEOPLE, months=MONTHS, seal=True)
    s = open_store(built.store_dir)
    try:
        link_all(s)
        assess(s)
        seal_control_runs(s, assess(s).runs)  # two assessments; the latest is sealed, as `accessproof assess` does
    finally:
        s.close()
    return built.store_dir


@pytest.fixture(scope="module")
def store(demo):
    s = open_store(demo, read_only=True)
    yield s
    s.close()


@pytest.fixture(scope="module")
def matrix(store):
    return build_matrix(store)


def _hostile(m, **values):
    """The matrix with its first row's text fields replaced by hostile values."""
    row = {**m.rows[0], **values}
    return dataclasses.replace(m, rows=[row, *m.rows[1:]])


# ---------------------------------------------------------------- rows


def test_one_row_per_requirement_control_pair(matrix):
    cat = load_catalogue()
    pairs = {(fw, req, c.id) for c in cat.values() for fw, reqs in c.frameworks.items() for req in reqs}
    got = [(r["framework"], r["requirement_id"], r["control_id"]) for r in matrix.rows]
    assert len(got) == len(set(got)) == len(pairs) and set(got) == pairs
    assert matrix.summary["rows"] == len(pairs) and matrix.summary["controls"] == len(cat)
    for r in matrix.rows:
        c = cat[r["control_id"]]
        assert r["owner"] == c.owner and r["control_objective"] == c.requirement and r["control_title"] == c.title
        assert set(r["workflow_sources"]) | set(r["evidence_sources"]) == set(c.evidence_sources)
        assert not set(r["workflow_sources"]) & set(r["evidence_sources"])
        assert r["retention_class"] == c.retention_class and r["retention"] == "7 years"
        assert r["framework_name"] and r["latest_status"] == "completed"
    # grouped by requirement: frameworks in catalogue order, requirement ids in natural order
    soc2 = [r["requirement_id"] for r in matrix.rows if r["framework"] == "soc2"]
    assert soc2 == sorted(soc2)
    iso = list(dict.fromkeys(r["requirement_id"] for r in matrix.rows if r["framework"] == "iso27001_2022"))
    assert iso.index("5.3") < iso.index("5.15")


def test_latest_results_and_findings_match_the_tables(store, matrix):
    latest = {r[0]: r[1:] for r in store.query("""
        SELECT control_id, run_id, population, ok, alarm, as_of FROM (
          SELECT *, row_number() OVER (PARTITION BY control_id ORDER BY started DESC, run_id DESC) AS rn
          FROM control_runs WHERE status = 'completed') WHERE rn = 1""")}
    assert store.query("SELECT count(DISTINCT assessment_id) FROM control_runs")[0][0] == 2
    states = {(c, s): n for c, s, n in store.query("SELECT control_id, state, count(*) FROM findings GROUP BY ALL")}
    excepting = {}
    for cid, exc in store.query("SELECT control_id, exception_id FROM findings WHERE state = 'excepted'"):
        excepting.setdefault(cid, set()).add(exc)
    for r in matrix.rows:
        run_id, population, ok, alarm, _as_of = latest[r["control_id"]]
        assert (r["latest_run_id"], r["population"], r["ok"], r["alarm"]) == (run_id, population, ok, alarm)
        assert r["pass_rate"] == (round(100 * ok / (ok + alarm), 1) if ok + alarm else None)
        assert r["open_findings"] == states.get((r["control_id"], "open"), 0)
        assert r["excepted_findings"] == states.get((r["control_id"], "excepted"), 0)
        assert set(r["exceptions"]) == excepting.get(r["control_id"], set())
        assert isinstance(r["latest_run_ledger_index"], int)  # the latest runs were sealed
        assert r["latest_error"] is None
    total_open = store.query("SELECT count(*) FROM findings WHERE state = 'open'")[0][0]
    assert matrix.summary["open_findings"] == total_open > 0
    assert matrix.summary["excepted_findings"] == sum(n for (_, s), n in states.items() if s == "excepted")
    assert matrix.as_of == store.query("SELECT max(time) FROM events")[0][0]


def test_exception_register(store, matrix):
    ids = {r[0] for r in store.query("SELECT record_id FROM wf_current WHERE kind = 'exception'")}
    assert {e["exception_id"] for e in matrix.exceptions} == ids and ids
    hostile = [e for e in matrix.exceptions if e["justification"] == HOSTILE]
    assert len(hostile) == 1
    for e in matrix.exceptions:
        if e["in_force"]:
            assert e["approval_state"] == "approved" and e["valid_from"] <= matrix.as_of < e["expires"]
    excepted = store.query("SELECT exception_id, count(*) FROM findings WHERE state = 'excepted' GROUP BY 1")
    by_id = {e["exception_id"]: e for e in matrix.exceptions}
    for exc, n in excepted:
        assert by_id[exc]["excepted_findings"] == n and by_id[exc]["excepts"]


def test_a_newer_failed_run_does_not_hide_the_latest_result(demo, tmp_path):
    from accessproof.controls import assess

    copy = tmp_path / "store"
    shutil.copytree(demo, copy)
    broken = tmp_path / "controls" / "dormant_account"
    shutil.copytree(Path(load_catalogue()["dormant_account"].path), broken)
    (broken / "query.sql").write_text("SELECT * FROM no_such_table", encoding="utf-8")
    # a control of the user's own (not in the built-in catalogue) that has never completed
    own = tmp_path / "controls" / "own_broken"
    shutil.copytree(broken, own)
    meta = (own / "control.yaml").read_text(encoding="utf-8").replace("id: dormant_account", "id: own_broken")
    (own / "control.yaml").write_text(meta, encoding="utf-8")
    s = open_store(copy)
    try:
        before = build_matrix(s)
        a = assess(s, "dormant_account,own_broken", controls_dir=tmp_path / "controls")
        assert len(a.errors) == 2
        after = build_matrix(s)
        from trestle.oscal.assessment_results import AssessmentResults

        raw = json.loads(to_oscal_json(s, after))
        AssessmentResults.model_validate(raw["assessment-results"])
    finally:
        s.close()
    mine = [r for r in after.rows if r["control_id"] == "own_broken"]
    assert len(after.rows) == len(before.rows) + len(mine) and mine
    assert all(r["latest_status"] == "error" and r["open_findings"] == 0 and r["pass_rate"] is None for r in mine)
    assert {(r["framework"], r["requirement_id"]) for r in mine} == {
        (r["framework"], r["requirement_id"]) for r in before.rows if r["control_id"] == "dormant_account"}
    (result,) = raw["assessment-results"]["results"]
    failed = [o for o in result["observations"] if o["title"].startswith("own_broken:")]
    assert len(failed) == 1 and "no_such_table" in failed[0]["description"]
    assert not any(f["target"]["target-id"] == "own_broken" for f in result["findings"])
    old = next(r for r in before.rows if r["control_id"] == "dormant_account")
    new = next(r for r in after.rows if r["control_id"] == "dormant_account")
    assert new["latest_status"] == "completed" and new["latest_run_id"] == old["latest_run_id"]
    assert new["open_findings"] == old["open_findings"]
    assert "no_such_table" in new["latest_error"]


# ---------------------------------------------------------------- formats


def test_csv(matrix):
    rows = list(csv.reader(io.StringIO(to_csv(matrix))))
    assert rows[0] == [k for k, _ in COLUMNS] and len(rows) == len(matrix.rows) + 1
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["control_id"] == matrix.rows[0]["control_id"]
    assert first["open_findings"] == str(matrix.rows[0]["open_findings"])
    bad = _hostile(matrix, owner=HOSTILE, control_title="+SUM(1)", control_objective="@cmd", layer="-2+3",
                   workflow_sources=["=evil"], exceptions=["\tEXC"])
    got = dict(zip(rows[0], next(r for r in list(csv.reader(io.StringIO(to_csv(bad))))[1:2]), strict=True))
    assert got["owner"] == "'" + HOSTILE and got["control_title"] == "'+SUM(1)"
    assert got["control_objective"] == "'@cmd" and got["layer"] == "'-2+3"
    assert got["workflow_sources"] == "'=evil" and got["exceptions"] == "'\tEXC"


def test_xlsx_never_stores_a_formula(matrix, tmp_path):
    import openpyxl

    bad = _hostile(matrix, owner=HOSTILE, control_title="+1+1", exceptions=["@SUM(A1)"],
                   control_objective="bell\x07and\x00nul")
    path = tmp_path / "matrix.xlsx"
    path.write_bytes(to_xlsx(bad))
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Matrix", "Exceptions", "About"]
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
    m = wb["Matrix"]
    header = [c.value for c in m[1]]
    assert header == [label for _, label in COLUMNS] and m.max_row == len(matrix.rows) + 1
    first = dict(zip(header, (c for c in m[2]), strict=True))
    assert first["Owner"].value == "'" + HOSTILE and first["Owner"].data_type == "s"
    assert first["Control"].value == "'+1+1" and first["Exceptions"].value == "'@SUM(A1)"
    assert "\x07" not in first["Control objective"].value
    assert first["Open findings"].data_type == "n"  # numbers stay numbers (a number is never a formula)
    ex = wb["Exceptions"]
    assert [c.value for c in ex[1]] == [label for _, label in EXCEPTION_COLUMNS]
    col = [c.value for c in ex[1]].index("Justification")
    just = [row[col].value for row in ex.iter_rows(min_row=2)]
    assert "'" + HOSTILE in just  # the simulator's hostile justification, as text
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert not re.search(rb"<(?:\w+:)?f[\s>/]", z.read(name)), name


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_escaped(matrix):
    xss = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    page = to_html(_hostile(matrix, owner=xss, control_title="<b>bold</b>"))
    assert page.startswith("<!doctype html>")
    assert "<script>" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img" in page
    dom = _Dom()
    dom.feed(page)
    tags = {t for t, _ in dom.tags}
    assert not tags & {"script", "img", "link", "iframe", "object", "embed", "a"}
    assert all(k not in ("src", "href") and not k.startswith("on") for _, a in dom.tags for k in a)
    csp = next(a["content"] for t, a in dom.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "script" not in csp
    text = "".join(dom.text)
    assert xss in text and HOSTILE in text  # shown as text, the exception register included
    assert page.count("<tr") == len(matrix.rows) + 1 + len(matrix.exceptions) + 1


def test_json(store, matrix):
    data = json.loads(to_json(matrix))
    assert data["format"] == "accessproof-matrix/1"
    assert data["columns"] == [k for k, _ in COLUMNS] and len(data["rows"]) == len(matrix.rows)
    assert data["summary"]["open_findings"] == matrix.summary["open_findings"]
    assert isinstance(data["rows"][0]["evidence_sources"], list)
    assert any(e["justification"] == HOSTILE for e in data["exceptions"])
    assert data["as_of"] == matrix.as_of.isoformat()
    assert to_json(matrix) == to_json(build_matrix(store))  # reproducible


# ---------------------------------------------------------------- OSCAL


def test_oscal_control_ids():
    assert oscal_control_id("nist_800_53_r5", "AC-2") == "ac-2"
    assert oscal_control_id("nist_800_53_r5", "AC-2(3)") == "ac-2.3"
    assert oscal_control_id("soc2", "CC6.1") == "soc2-cc6.1"
    assert oscal_control_id("cfr_part11", "11.10(d)") == "cfr_part11-11.10.d"
    assert oscal_control_id("hipaa", "164.308(a)(3)(ii)(C)") == "hipaa-164.308.a.3.ii.c"
    assert oscal_control_id("eu_gmp_annex11", "§12") == "eu_gmp_annex11-12"
    assert oscal_control_id("sox_itgc", "access-provisioning") == "sox_itgc-access-provisioning"


def test_oscal_times_with_microseconds_read_back_the_same(store, matrix):
    """Run times with 1-999 µs past the millisecond (about one in a thousand) used to be written as ".000"
    and read back as another time: the document then failed its own round trip now and then."""
    from trestle.oscal.assessment_results import AssessmentResults

    controls = [dict(c) for c in matrix.controls]
    for c in controls:
        for key in ("latest_started", "latest_finished", "latest_as_of"):
            if isinstance(c.get(key), datetime):
                c[key] = c[key].replace(microsecond=456)
    odd = dataclasses.replace(matrix, controls=controls, as_of=matrix.as_of.replace(microsecond=999))
    text = to_oscal_json(store, odd)
    doc = AssessmentResults.model_validate(json.loads(text)["assessment-results"])
    assert doc.oscal_serialize_json(pretty=True) + "\n" == text
    assert ".000+00:00" not in text


def test_oscal_assessment_results_validate(store, matrix):
    from trestle.oscal.assessment_results import AssessmentResults

    text = to_oscal_json(store, matrix)
    assert text == to_oscal_json(store, build_matrix(store))  # reproducible: stable uuids, times from the store
    raw = json.loads(text)
    doc = AssessmentResults.model_validate(raw["assessment-results"])  # the round trip through trestle's models
    assert doc.oscal_serialize_json(pretty=True) + "\n" == text
    assert raw["assessment-results"]["import-ap"]["href"].startswith("#")
    resources = {r["uuid"] for r in raw["assessment-results"]["back-matter"]["resources"]}
    assert raw["assessment-results"]["import-ap"]["href"][1:] in resources
    assert raw["assessment-results"]["metadata"]["oscal-version"]
    (result,) = doc.results

    # reviewed controls: every requirement of every run control, per framework
    wanted = {oscal_control_id(r["framework"], r["requirement_id"]) for r in matrix.rows}
    listed = {s.control_id for sel in result.reviewed_controls.control_selections for s in sel.include_controls}
    assert listed == wanted

    # observations: one per control run, stable uuid5 of the run id, evidence ids of the alarm rows
    runs = {r["control_id"]: r["latest_run_id"] for r in matrix.rows}
    assert len(result.observations) == len(runs)
    obs = {o.uuid: o for o in result.observations}
    for cid, run_id in runs.items():
        o = obs[str(uuid.uuid5(UUID_NAMESPACE, f"observation|{run_id}"))]
        props = {(p.name, p.value) for p in o.props}
        assert ("control-id", cid) in props and ("run-id", run_id) in props
        cited = {p.value for ev in o.relevant_evidence for p in (ev.props or []) if p.name == "evidence-id"}
        alarm_ids = {i for (ev,) in store.query(
            "SELECT evidence_ids_json FROM control_results WHERE run_id = ? AND status IN ('alarm', 'error')",
            [run_id]) for i in json.loads(ev)}
        assert cited == alarm_ids
        run_ev = o.relevant_evidence[0]
        assert run_ev.href.endswith(run_id) and any(p.name == "ledger-index" for p in run_ev.props)

    # findings: one per open finding (not satisfied), one per control without open findings (satisfied)
    states = [f.target.status.state.value for f in result.findings]
    open_n = store.query("SELECT count(*) FROM findings WHERE state = 'open'")[0][0]
    clean = {r["control_id"] for r in matrix.rows if r["open_findings"] == 0}
    assert states.count("not-satisfied") == open_n and states.count("satisfied") == len(clean)
    ids = {fid for (fid,) in store.query("SELECT finding_id FROM findings WHERE state = 'open'")}
    assert {f.uuid for f in result.findings if f.target.status.state.value == "not-satisfied"} == {
        str(uuid.uuid5(UUID_NAMESPACE, f"finding|{i}")) for i in ids}
    assert {f.target.target_id for f in result.findings if f.target.status.state.value == "satisfied"} == clean
    for f in result.findings:
        assert f.related_observations and all(r.observation_uuid in obs for r in f.related_observations)


def test_oscal_import_ap_override(store, matrix):
    raw = json.loads(to_oscal_json(store, matrix, import_ap="https://example.test/ap.json"))
    assert raw["assessment-results"]["import-ap"] == {"href": "https://example.test/ap.json"}


# ---------------------------------------------------------------- the command


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "html", "json", "oscal"])
def test_cli_writes_each_format(demo, store, matrix, tmp_path, fmt):
    out = tmp_path / f"matrix.{fmt}"
    r = runner.invoke(build_app(), ["matrix", "--store", str(demo), "--format", fmt, "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{len(matrix.rows)} requirement × control rows" in r.output
    data = out.read_bytes()
    if fmt == "xlsx":
        assert data[:2] == b"PK"
    elif fmt == "csv":
        assert data.decode() == to_csv(matrix)
    elif fmt == "html":
        assert data.decode() == to_html(matrix)
    elif fmt == "json":
        assert data.decode() == to_json(matrix)
    else:
        assert data.decode() == to_oscal_json(store, matrix)


def test_cli_stdout(demo, matrix):
    r = runner.invoke(build_app(), ["matrix", "--store", str(demo), "-f", "csv"])
    assert r.exit_code == 0 and r.output == to_csv(matrix)


def _one_line_error(r, *needles):
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_cli_errors_are_one_line(demo, tmp_path):
    app = build_app()
    _one_line_error(runner.invoke(app, ["matrix", "--store", str(demo), "-f", "pdf"]), "unknown format 'pdf'", "oscal")
    _one_line_error(runner.invoke(app, ["matrix", "--store", str(demo), "-f", "xlsx"]), "--out")
    empty = tmp_path / "empty"
    open_store(empty).close()
    _one_line_error(runner.invoke(app, ["matrix", "--store", str(empty)]), "no control has been run")
    _one_line_error(runner.invoke(app, ["matrix", "--store", str(tmp_path / "nowhere")]), "no store at")
