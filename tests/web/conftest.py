"""The dashboard served over the demo organisation, driven by Debian's Chromium through Playwright.

Once per session: the demo company is simulated and ingested (sealed), a worker whose display name is
markup is ingested through the same HR path, the store is linked, assessed twice (two points on the
trend charts) and that worker re-tested once (an event-driven ``retest-…`` run), and ``accessproof serve``'s app runs in a thread on a free loopback port. Tests skip when
Chromium is not installed (``scripts/browser.sh`` installs it).
"""

from __future__ import annotations

import csv
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_ID = "999001"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Served:
    url: str
    store_dir: Path
    tokens: dict[str, str]
    app: object


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ingest_markup_worker(store, data: Path, out: Path) -> None:
    """One more worker in the HR export's own format, named with markup (attacker-controlled input)."""
    from accessproof.ingest import ingest_paths

    with (data / "hr" / "workers.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        first = next(reader)
        fields = reader.fieldnames or []
    row = {k: "" for k in fields}
    row.update({"Employee ID": XSS_ID, "Legal Name": XSS_NAME, "Work Email": "markup.test@acme.com",
                "Username": "markup.test", "Worker Type": "Employee", "Business Unit": first.get("Business Unit", ""),
                "Job Title": "=HYPERLINK(\"http://x\")", "Hire Date": "2026-02-02"})
    path = out / "workers-extra.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerow(row)
    summary = ingest_paths(store, "csv", [path], options={"mapping": "hr_workers"})
    assert summary.accepted == 1, summary.as_dict()


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Served]:
    import uvicorn

    from accessproof.api.app import create_app
    from accessproof.api.auth import ROLES, create_token
    from accessproof.api.settings import ServerSettings
    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store
    from accessproof.evidence import seal_control_runs
    from accessproof.linking.link import link_all
    from accessproof.server.retest import retest_subject
    from accessproof.store import open_store

    root = tmp_path_factory.mktemp("web-demo")
    built = build_demo_store(root)
    store = open_store(built.store_dir)
    try:
        _ingest_markup_worker(store, Path(built.data), root)
        link_all(store)
        for _ in range(2):
            seal_control_runs(store, assess(store).runs)
        # one event-driven re-test after them (as the server runs after an ingest): not a full assessment
        retest_subject(store, XSS_ID, "web test", controls=["revocation_late"], relink=False)
        tokens = {role: create_token(store, role, f"web test {role}") for role in ROLES}
    finally:
        store.close()
    app = create_app(str(built.store_dir), settings=ServerSettings.from_dict({"scheduler": False}))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.05)
    yield Served(f"http://127.0.0.1:{port}", built.store_dir, tokens, app)
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (scripts/browser.sh installs Debian's)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page_for(browser, served):
    """``page_for(role)``: a fresh browser context signed in with that role's token (dialogs recorded)."""
    contexts = []

    def make(role: str):
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
        contexts.append(ctx)
        page = ctx.new_page()
        page.dialogs = []  # type: ignore[attr-defined]
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
        sign_in(page, served, served.tokens[role])
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page, served: Served, token: str) -> None:
    page.goto(served.url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state()
