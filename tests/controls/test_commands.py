"""The controls CLI as the lead mounts it (``build_app``): assess, findings, controls list/score, policy check."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from accessproof.controls.commands import build_app
from tests.controls.org import POLICY, build_org

runner = CliRunner()


def _store(tmp_path):
    from accessproof.store import open_store

    s = open_store(tmp_path / "store")
    build_org(tmp_path / "org").ingest(s)
    s.close()
    return str(tmp_path / "store")


def test_assess_findings_and_policy_check(tmp_path):
    app = build_app()
    store = _store(tmp_path)
    r = runner.invoke(app, ["assess", "--store", store, "--policy", str(POLICY), "-s", "tag:sod",
                            "-p", "revocation_sla_hours=48", "-f", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {x["control_id"] for x in out["runs"]} == {"requester_is_approver", "approver_is_executor", "sod_conflict"}
    assert out["counts"]["alarm"] >= 3
    r = runner.invoke(app, ["findings", "--store", store, "--control", "sod_conflict", "-f", "jsonl"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.output.splitlines()]
    assert rows and rows[0]["control_id"] == "sod_conflict" and rows[0]["state"] in ("open", "excepted")
    r = runner.invoke(app, ["policy", "check", "--store", store, "--policy", str(POLICY), "-f", "jsonl"])
    assert r.exit_code == 0, r.output  # warnings only
    r = runner.invoke(app, ["policy", "check", "--store", store, "--policy", str(POLICY), "--strict"])
    assert r.exit_code in (0, 1)
    r = runner.invoke(app, ["controls", "list", "-s", "soc2:CC6.3", "-f", "csv"])
    assert r.exit_code == 0 and "sod_conflict" in r.output


def test_errors_are_one_line(tmp_path):
    app = build_app()
    store = _store(tmp_path)
    r = runner.invoke(app, ["assess", "--store", store, "-s", "no_such_control"])
    assert r.exit_code == 2 and "matches no control" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["assess", "--store", store, "-p", "oops"])
    assert r.exit_code == 2 and "name=value" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("entitlements: [{system: okta, name: x, approvers: [king]}]")
    r = runner.invoke(app, ["policy", "check", "--store", store, "--policy", str(bad)])
    assert r.exit_code == 2 and "unknown approver role" in r.output
