"""The main job through the CLI, on a small company: everything read is accounted for."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from accessproof.cli import app


def test_demo_command_runs_end_to_end_and_accounts_for_every_record(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--people", "60", "--months", "3",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = orjson.loads(res.stdout.strip().splitlines()[-1])
    t = out["totals"]
    assert t["read"] > 10_000
    assert t["read"] == t["accepted"] + t["duplicate"] + t["quarantined"]
    assert t["duplicate"] > 0  # the simulator re-delivers some Okta events and CloudTrail files
    assert out["summary"]["link"]["links"]
    assert (tmp_path / "d" / "store" / "accessproof.duckdb").exists()
    assert (tmp_path / "d" / "data" / "ground_truth.json").exists()


def test_demo_with_bad_arguments_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--people", "5"])
    assert res.exit_code != 0
    assert "Traceback" not in res.output and "40 people" in res.output
