"""``accessproof serve`` and ``token`` on bad input: one line, no traceback, no server started; and the app
with the dashboard and the scheduler mounted, as ``serve`` builds it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from accessproof.api.app import create_app
from accessproof.cli import app as cli
from tests.api.conftest import auth, make_settings, served_store

runner = CliRunner()


def test_serve_refuses_bad_settings_and_stores_in_one_line(tmp_path):
    bad = tmp_path / "server.toml"
    bad.write_text("max_body_bytes = 'lots'\n")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for args in (["--config", str(bad)], ["--config", str(tmp_path / "missing.toml")],
                 ["--store", str(not_a_dir)], ["--store", "postgresql://nobody@127.0.0.1:1/none"]):
        res = runner.invoke(cli, ["serve", *args] + ([] if "--store" in args else ["--store", str(tmp_path / "s")]))
        assert res.exit_code == 2, (args, res.output)
        assert res.output.startswith("error: ") and len(res.output.strip().splitlines()) == 1, res.output
        assert "Traceback" not in res.output


def test_app_with_dashboard_and_scheduler_as_serve_builds_it(tmp_path):
    tokens = served_store(tmp_path / "st", samples=False)
    settings = make_settings(dashboard=True, scheduler=True)
    with TestClient(create_app(str(tmp_path / "st"), settings=settings)) as client:
        assert client.get("/api/v1/whoami", headers=auth(tokens["auditor"])).json()["role"] == "auditor"
        page = client.get("/", follow_redirects=False)
        assert page.status_code in (200, 303, 307)
        assert client.get("/openapi.json").status_code == 200


def test_token_list_shows_control_characters_in_labels_escaped(tmp_path):
    store = str(tmp_path / "st")
    made = runner.invoke(cli, ["token", "create", "--role", "auditor", "--label", "q3 \x1b[2Jaudit\r[bold]x[/]",
                               "--store", store])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli, ["token", "list", "--store", store])
    assert listed.exit_code == 0, listed.output
    assert "\x1b" not in listed.output and "\r" not in listed.output
    assert "q3 \\x1b[2Jaudit\\r[bold]x[/]" in listed.output
    bad = runner.invoke(cli, ["token", "create", "--role", "root\x1b[31m", "--store", store])
    assert bad.exit_code == 2 and bad.output.startswith("error: unknown role") and "\x1b" not in bad.output
