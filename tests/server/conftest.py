"""Fixtures for the server tests: a real local HTTP receiver, a small store, and a demo store per test.

The receiver is a ``ThreadingHTTPServer`` on a free loopback port (no mocks): it records every request
(method, path, headers, body, arrival time) and answers ``fail_first`` requests with ``fail_status`` before
answering 200 — what a flaky SIEM or ticketing endpoint does.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from accessproof.store import open_store
from tests.conftest import dev_data


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0
    fail_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float) -> Received | None:
        """The first request that satisfies ``predicate``, waiting up to ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                hit = next((r for r in self.requests if predicate(r)), None)
            if hit is not None:
                return hit
            time.sleep(0.05)
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec: Receiver = state["rec"]
            with rec.lock:
                rec.requests.append(Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                             time.monotonic()))
                failing = len(rec.requests) <= rec.fail_first
            status = rec.fail_status if failing else 200
            payload = b"try again" if failing else b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/events")
    state["rec"] = rec
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def small_store(tmp_path):
    """A store with a signing key and the real Okta samples ingested (no demo needed)."""
    from accessproof.ingest import ingest_paths
    from accessproof.ledger import init_store

    led, _ = init_store(tmp_path / "store")
    led.close()
    s = open_store(tmp_path / "store")
    ingest_paths(s, "okta", [dev_data() / "okta"])
    yield s
    s.close()


@pytest.fixture(scope="session")
def demo_built(tmp_path_factory) -> tuple[Path, Path]:
    """The demo company, ingested (sealed, signed), linked, assessed and its runs sealed, once: (store, data)."""
    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store
    from accessproof.evidence import seal_control_runs
    from accessproof.linking.link import link_all

    built = build_demo_store(tmp_path_factory.mktemp("server-demo"))
    s = open_store(built.store_dir)
    try:
        link_all(s)
        seal_control_runs(s, assess(s).runs)
    finally:
        s.close()
    return built.store_dir, built.data


@pytest.fixture
def demo_dir(demo_built, tmp_path) -> Path:
    """A private copy of the demo store (tests here change it)."""
    dst = tmp_path / "store"
    shutil.copytree(demo_built[0], dst)
    return dst


@pytest.fixture
def demo_store(demo_dir):
    s = open_store(demo_dir)
    yield s
    s.close()


@pytest.fixture
def okta_events(demo_built) -> list[dict[str, Any]]:
    return json.loads((demo_built[1] / "okta" / "system_log.json").read_text(encoding="utf-8"))


def okta_grant(events: list[dict[str, Any]], *, group: str, justification: str | None = None,
               after: timedelta = timedelta(minutes=5)) -> dict[str, Any]:
    """A new Okta group-membership grant for the person of the demo's last such grant, ``after`` the last
    event of the log, to ``group``, citing ``justification`` (or nothing)."""
    import uuid

    last = max(datetime.fromisoformat(e["published"].replace("Z", "+00:00")) for e in events)
    base = [e for e in events if e["eventType"] == "group.user_membership.add"][-1]
    g = json.loads(json.dumps(base))
    g["uuid"] = str(uuid.uuid4())
    g["published"] = (last + after).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    g["transaction"]["id"] = g["debugContext"]["debugData"]["requestId"] = uuid.uuid4().hex[:27]
    data = g["debugContext"]["debugData"]
    data.pop("justification", None)
    if justification:
        data["justification"] = justification
    g["target"][1]["displayName"] = group
    g["target"][1]["id"] = "00g" + uuid.uuid4().hex[:17]
    return g
