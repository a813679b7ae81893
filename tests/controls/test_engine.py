"""The control engine: catalogue loading and validation, parameter binding, dialects, selectors, user
controls, failure isolation; the access policy and its check."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from accessproof.controls import ControlError, assess, bind, load_catalogue, select_controls, transpile
from accessproof.controls.engine import FRAMEWORKS, parameters_used
from accessproof.controls.policy import PolicyError, check_policy, load_policy
from accessproof.store import open_store
from tests.controls.org import POLICY, build_org

CATALOGUE = load_catalogue()
DUCKDB_ONLY = ("ARG_MAX", "ARG_MIN", "LIST_SLICE", "LIST_FILTER", "LIST_TRANSFORM", "LIST_VALUE", "LIST_DISTINCT",
               "STRUCT_PACK", "REGEXP_MATCHES", "EPOCH", "STRFTIME", "JSON_EXTRACT_STRING", "DATE_DIFF", "LIST(")

REQUIRED_SPEC = {
    "soc2": {"CC6.1", "CC6.2", "CC6.3"},
    "iso27001_2022": {"5.3", "5.15", "5.16", "5.17", "5.18", "5.19", "5.20", "5.21", "5.22", "6.5", "8.2", "8.5"},
    "nist_800_53_r5": {"AC-2", "AC-5", "AC-6", "IA-4", "IA-5", "PS-4", "PS-7"},
    "cfr_part11": {"11.10(d)", "11.10(e)", "11.10(g)", "11.10(i)"},
    "eu_gmp_annex11": {"§2", "§3", "§12"},
}


def test_catalogue_loads_and_is_complete():
    assert len(CATALOGUE) >= 27
    for c in CATALOGUE.values():
        assert c.title and c.requirement and c.owner and c.retention_class and c.evidence_sources
        assert set(c.frameworks) <= set(FRAMEWORKS) and c.frameworks.get("soc2")
        assert c.sql.strip()
        assert all(p in c.parameters or p in ("as_of", "period_start") for p in parameters_used(c.sql))


def test_catalogue_covers_the_framework_requirements():
    mapped: dict[str, set[str]] = {}
    for c in CATALOGUE.values():
        for fw, ids in c.frameworks.items():
            mapped.setdefault(fw, set()).update(ids)
    for fw, want in REQUIRED_SPEC.items():
        assert want <= mapped[fw], (fw, want - mapped[fw])
    assert mapped["sox_itgc"] and mapped["hipaa"]


@pytest.mark.parametrize("control_id", sorted(CATALOGUE))
def test_every_query_transpiles_to_postgres(control_id):
    sql = CATALOGUE[control_id].sql
    pg = transpile(sql, "postgres")
    assert pg and ("%(" in pg or not parameters_used(sql))  # named parameters in psycopg's style
    # no DuckDB-only function survives (sqlglot passes unknown functions through unchanged)
    upper = pg.upper()
    for fn in DUCKDB_ONLY:
        assert fn + "(" not in upper, (control_id, fn)
    # the bound form (positional ?) transpiles too, and PostgreSQL parses its own output back
    bound, _ = bind(sql, {p: 1 for p in parameters_used(sql)})
    again = sqlglot.transpile(bound, read="duckdb", write="postgres", unsupported_level=ErrorLevel.RAISE)[0]
    sqlglot.parse_one(again, read="postgres")


def test_bind_replaces_parameters_outside_strings_and_comments():
    sql = "SELECT '$not_me', \"$nor_me\" -- $comment\n, $a + $b /* $c */ FROM t WHERE x = $a"
    out, params = bind(sql, {"a": 1, "b": 2})
    assert out == "SELECT '$not_me', \"$nor_me\" -- $comment\n, ? + ? /* $c */ FROM t WHERE x = ?"
    assert params == [1, 2, 1]
    with pytest.raises(ControlError, match=r"\$b has no value"):
        bind("SELECT $b", {})


def test_parameters_are_bound_never_pasted(tmp_path):
    store = open_store(tmp_path / "s")
    d = _control(tmp_path / "ctl", "echo_param", "SELECT 'r' AS resource, 'info' AS status, $text AS reason, "
                 "CAST([] AS VARCHAR[]) AS evidence_ids", params={"text": {"default": "x"}})
    hostile = "'); DROP TABLE events; --"
    a = assess(store, ["echo_param"], controls_dir=d, params={"text": hostile})
    assert a.runs[0]["status"] == "completed"
    assert store.query("SELECT reason FROM control_results")[0][0] == hostile
    assert store.query("SELECT count(*) FROM events")[0][0] == 0  # still there
    store.close()


def test_selectors():
    ids = lambda sel: {c.id for c in select_controls(CATALOGUE, sel)}  # noqa: E731
    assert ids("revocation_*") == {"revocation_late", "revocation_missing"}
    assert "sod_conflict" in ids("nist_800_53_r5:AC-5") and "dormant_account" not in ids("nist_800_53_r5:AC-5")
    assert "revocation_late" in ids("nist_800_53_r5:AC-2")  # AC-2 selects AC-2(3) too
    assert ids("tag:sod") == {"requester_is_approver", "approver_is_executor", "sod_conflict"}
    assert ids("layer:policy") and all(CATALOGUE[i].layer == "policy" for i in ids("layer:policy"))
    assert ids(["shared_account", "orphan_account"]) == {"shared_account", "orphan_account"}
    assert ids("cfr_part11") == {c.id for c in CATALOGUE.values() if c.frameworks.get("cfr_part11")}
    with pytest.raises(ControlError, match="matches no control"):
        select_controls(CATALOGUE, "nonsense")


def _control(root: Path, cid: str, sql: str, params: dict | None = None, **meta) -> Path:
    d = root / cid
    d.mkdir(parents=True)
    body = {"id": cid, "title": f"test {cid}", "requirement": "r", "owner": "o", "severity": "low",
            "stage": "use", "layer": "enforcement", "frequency": "daily", "retention_class": "control_results",
            "evidence_sources": ["test"], "frameworks": {"soc2": ["CC6.1"]}, "parameters": params or {}, **meta}
    import yaml

    (d / "control.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    (d / "query.sql").write_text(textwrap.dedent(sql), encoding="utf-8")
    return root


def test_user_controls_dir_adds_and_overrides(tmp_path):
    root = tmp_path / "mine"
    _control(root, "my_check", "SELECT 'a' AS resource, 'alarm' AS status, 'bad' AS reason, ['e1'] AS evidence_ids")
    _control(root, "dormant_account", "SELECT 'x' AS resource, 'ok' AS status, 'mine' AS reason, "
             "CAST([] AS VARCHAR[]) AS evidence_ids")
    cat = load_catalogue(root)
    assert "my_check" in cat and cat["dormant_account"].path.startswith(str(root))
    assert len(cat) == len(CATALOGUE) + 1
    store = open_store(tmp_path / "s")
    a = assess(store, ["my_check", "dormant_account"], controls_dir=root)
    assert {r["control_id"]: r["alarm"] for r in a.runs} == {"dormant_account": 0, "my_check": 1}
    store.close()


def test_invalid_controls_are_rejected(tmp_path):
    _control(tmp_path / "a", "undeclared", "SELECT $nope AS resource")
    with pytest.raises(ControlError, match=r"\$nope not declared"):
        load_catalogue(tmp_path / "a", builtin=False)
    _control(tmp_path / "b", "bad_fw", "SELECT 1", frameworks={"pci": ["1"]})
    with pytest.raises(ControlError, match="unknown framework"):
        load_catalogue(tmp_path / "b", builtin=False)
    _control(tmp_path / "c", "wrong_name", "SELECT 1")
    (tmp_path / "c" / "wrong_name").rename(tmp_path / "c" / "other")
    with pytest.raises(ControlError, match="differs from its folder"):
        load_catalogue(tmp_path / "c", builtin=False)


def test_a_failing_control_does_not_stop_the_others(tmp_path):
    root = tmp_path / "mine"
    _control(root, "broken", "SELECT * FROM no_such_table")
    _control(root, "no_columns", "SELECT 1 AS x")
    _control(root, "odd", """
      SELECT * FROM (VALUES ('r1', 'ALARM', 'upper case is fine', ['a', NULL, 'b']),
                            ('r2', 'maybe', 'not a status', CAST([] AS VARCHAR[])),
                            ('r2', 'ok', 'duplicate resource', CAST([] AS VARCHAR[])))
        t(resource, status, reason, evidence_ids)""")
    store = open_store(tmp_path / "s")
    a = assess(store, ["broken", "no_columns", "odd", "orphan_account"], controls_dir=root)
    runs = {r["control_id"]: r for r in a.runs}
    assert runs["broken"]["status"] == "error" and "no_such_table" in runs["broken"]["error_message"]
    assert runs["no_columns"]["status"] == "error" and "resource" in runs["no_columns"]["error_message"]
    assert runs["orphan_account"]["status"] == "completed"
    odd = runs["odd"]
    assert (odd["alarm"], odd["error"], odd["duplicates"], odd["population"]) == (1, 1, 1, 2)
    rows = {r[0]: r for r in store.query(
        "SELECT resource, status, reason, evidence_ids_json FROM control_results WHERE run_id = ?", [odd["run_id"]])}
    assert rows["r1"][3] == '["a","b"]'  # NULLs dropped
    assert rows["r2"][1] == "error" and rows["r2"][2].startswith("invalid status maybe")
    assert {r["control_id"] for r in store.query_dicts("SELECT control_id FROM control_runs")} == set(runs)
    store.close()


def test_runs_carry_what_the_ledger_needs(tmp_path):
    store = open_store(tmp_path / "s")
    build_org(tmp_path / "org").ingest(store)
    a = assess(store, ["orphan_account", "shared_account"], policy=POLICY)
    for r in a.runs:
        assert r["results_digest"] and len(r["results_digest"]) == 64
        assert r["policy_digest"] == load_policy(POLICY).digest
        assert r["parameters_json"] and r["as_of"] and r["started"] <= r["finished"]
    again = assess(store, ["orphan_account", "shared_account"], policy=POLICY)
    assert [r["results_digest"] for r in a.runs] == [r["results_digest"] for r in again.runs]
    assert a.to_dict()["counts"]["alarm"] == 4
    store.close()


# ---------------------------------------------------------------- policy

def test_default_policy_is_valid():
    pol = load_policy()
    assert pol.approver_training and pol.conflicts and pol.service_accounts
    priv = {e.id for e in pol.entitlements if pol.resolved(e).get("privileged")}
    assert {"okta:qms-approvers", "aws:AdministratorAccess", "okta:erp-payment-approvers"} <= priv
    assert pol.resolved(next(e for e in pol.entitlements if e.id == "okta:qms-approvers"))["approvers"] == [
        "manager", "system_owner"]


def test_policy_validation_errors(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("entitlements:\n  - {system: okta, name: x, approvers: [cfo]}\n")
    with pytest.raises(PolicyError, match="unknown approver role 'cfo'"):
        load_policy(bad)
    bad.write_text("entitlements:\n  - {system: okta, name: x}\nconflicts:\n  - {id: c, entitlements: [okta:x, okta:y]}\n")
    with pytest.raises(PolicyError, match="unknown entitlement id"):
        load_policy(bad)
    bad.write_text("entitlements:\n  - {system: okta, name: x, class: nope}\n")
    with pytest.raises(PolicyError, match="unknown class"):
        load_policy(bad)
    bad.write_text("entitlements:\n  - {system: okta, name: x, colour: red}\n")
    with pytest.raises(PolicyError, match="colour"):
        load_policy(bad)


def test_policy_check_names_unknown_entitlements_owners_and_courses(tmp_path):
    store = open_store(tmp_path / "s")
    build_org(tmp_path / "org").ingest(store)
    p = tmp_path / "p.yaml"
    p.write_text(POLICY.read_text() + textwrap.dedent("""\
      approver_training: ["SOP-IT-012 Access Management for Approvers", "SOP-XX-999 Nobody took this"]
    """).replace("approver_training: [\"SOP-IT-012 Access Management for Approvers\"]\n", "", 1))
    text = p.read_text().replace(
        "  - {system: aws, type: policy, name: ReadOnlyAccess}",
        "  - {system: aws, type: policy, name: ReadOnlyAccess}\n  - {system: okta, type: group, name: vpn-userz}\n"
        "  - {system: okta, type: group, name: tableau, system_owner: 'title:Chief Nothing Officer', "
        "approvers: [system_owner]}")
    p.write_text(text)
    problems = check_policy(store, load_policy(p))
    kinds = {(x["kind"], x["item"]) for x in problems}
    assert ("unknown-entitlement", "okta:vpn-userz") in kinds
    assert ("unknown-owner", "okta:tableau:system_owner") in kinds
    assert ("unknown-course", "SOP-XX-999 Nobody took this") in kinds
    assert not any(k == "unknown-entitlement" and i == "okta:vpn-users" for k, i in kinds)
    assert not any(k == "unknown-owner" and i.startswith("okta:qms-approvers") for k, i in kinds)
    assert all(x["message"] for x in problems)
    store.close()
