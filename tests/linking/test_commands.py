"""The identity and linking commands, through Typer, on the small vendor-format organisation."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from accessproof.linking.commands import build_app
from accessproof.store import open_store
from tests.linking.test_link import build_org

runner = CliRunner()


@pytest.fixture
def store_dir(tmp_path):
    d = tmp_path / "store"
    s = open_store(d)
    build_org(tmp_path).ingest(s)
    s.close()
    return str(d)


def _run(*args: str) -> str:
    res = runner.invoke(build_app(), list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


def test_run_then_query(store_dir):
    summary = orjson.loads(_run("link", "run", "--store", store_dir, "--json"))
    assert summary["unlinked_grants"] == 5 and summary["missing_removals"] == 2
    rows = [orjson.loads(x) for x in _run("link", "list", "--store", store_dir, "--format", "jsonl",
                                          "--record", "RITM0010002").splitlines()]
    assert {r["basis"] for r in rows} == {"inferred"}
    unlinked = _run("link", "unlinked", "--store", store_dir, "--format", "csv")
    assert "okta-admins" in unlinked and "no-approval-found" in unlinked
    assert "RITM0010005" in _run("link", "unexecuted", "--store", store_dir, "--format", "csv")
    missing = _run("link", "removals", "--store", store_dir, "--missing", "--format", "jsonl")
    assert len(missing.splitlines()) == 2
    by_system = _run("link", "removals", "--store", store_dir, "--by-system", "--format", "csv")
    assert "33.0" in by_system
    access = _run("access", "--at", "2025-03-05T12:00:00Z", "--person", "anna.schmidt@acme.com", "--store",
                  store_dir, "--format", "csv")
    assert "vpn-users" in access and "ReadOnlyAccess" in access
    steps = orjson.loads(_run("timeline", "W-1", "--store", store_dir, "--json"))
    assert steps[0]["person_id"] == "W-1"
    assert "timeline of W-1" in _run("timeline", "W-1", "--store", store_dir)


def test_identity_commands(store_dir):
    assert "accounts" in _run("identity", "resolve", "--store", store_dir)
    rows = [orjson.loads(x) for x in _run("identity", "list", "--store", store_dir, "--format", "jsonl",
                                          "--person", "W-1").splitlines()]
    assert rows and all(r["person_id"] == "W-1" for r in rows)
    assert "(none)" in _run("identity", "conflicts", "--store", store_dir)
    _run("identity", "orphans", "--store", store_dir)
    assert "svc" not in _run("identity", "ownerless", "--store", store_dir, "--format", "csv")


def test_errors_are_one_line(tmp_path, store_dir):
    res = runner.invoke(build_app(), ["access", "--at", "yesterday", "--store", store_dir])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("nonsense: 1\n", encoding="utf-8")
    res = runner.invoke(build_app(), ["link", "run", "--store", store_dir, "--config", str(bad)])
    assert res.exit_code == 2 and "unknown section" in res.output
    res = runner.invoke(build_app(), ["timeline", "nobody", "--store", store_dir])
    assert res.exit_code == 2 and "no person matches" in res.output
