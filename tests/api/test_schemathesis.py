"""Fuzzing the published OpenAPI document: schemathesis against a live ``accessproof serve`` (uvicorn on a
free loopback port, admin token) finds no 5xx. The server is a subprocess, as an operator runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import dev_data

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A served store holding the okta and github samples, assessed; (base URL, admin token)."""
    from accessproof.api.auth import create_token
    from accessproof.controls import assess
    from accessproof.evidence import seal_control_runs
    from accessproof.ingest import ingest_paths
    from accessproof.ledger import init_store
    from accessproof.store import open_store

    root = tmp_path_factory.mktemp("fuzz")
    led, _ = init_store(root / "st")
    led.close()
    s = open_store(root / "st")
    try:
        for t in ("okta", "github"):
            ingest_paths(s, t, [dev_data() / t])
        seal_control_runs(s, assess(s).runs)
        token = create_token(s, "admin", "schemathesis")
    finally:
        s.close()
    port = _free_port()
    env = {**os.environ, "ACCESSPROOF_SCHEDULER": "0", "ACCESSPROOF_DASHBOARD": "0", "ACCESSPROOF_RETEST": "0",
           "ACCESSPROOF_HOOK_SECRET": "fuzz", "ACCESSPROOF_OKTA_HOOK_SECRET": "fuzz-okta"}
    log = (root / "server.log").open("wb")
    server = subprocess.Popen([str(VENV_BIN / "accessproof"), "serve", "--store", str(root / "st"), "--port",
                               str(port), "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                pytest.fail(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        else:
            pytest.fail("server did not come up in 120 s")
        yield base, token, root / "server.log"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _schemathesis(base: str, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "schemathesis"), "run", base + "/openapi.json", "-H", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error", "--workers", "1", "--seed", "8", "--request-timeout", "180",
         "--suppress-health-check", "all", "--no-color", *args],
        capture_output=True, text=True, timeout=1500)


def test_schemathesis_finds_no_server_error(live):
    """Every operation, boundary values and random data; an assessment runs the whole catalogue (seconds
    each), so it gets a few random cases of its own rather than the whole coverage phase."""
    base, token, log = live
    runs = [_schemathesis(base, token, "--phases", "coverage,fuzzing", "--max-examples", "5",
                          "--exclude-path", "/api/v1/assessments"),
            _schemathesis(base, token, "--phases", "fuzzing", "--max-examples", "4",
                          "--include-path", "/api/v1/assessments")]
    for run in runs:
        out = run.stdout + run.stderr
        assert "Test cases:" in out, out[-3000:]
        assert run.returncode == 0, out[-6000:] + "\n--- server log ---\n" + log.read_text()[-3000:]
        assert "Server error" not in out and "Network Error" not in out
    doc = httpx.get(base + "/openapi.json", timeout=30).json()
    operations = sum(len(methods) for methods in doc["paths"].values())
    assert f"{operations - 1} selected" in runs[0].stdout and "1 selected" in runs[1].stdout  # every one tried
