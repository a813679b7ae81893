"""The demo organisation for control tests: simulated at the simulator's default size (200 people, 6 months,
seed 7), ingested in vendor formats, linked and assessed once per session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store
    from accessproof.linking.link import link_all
    from accessproof.store import open_store

    root = tmp_path_factory.mktemp("controls-demo")
    built = build_demo_store(root)
    store = open_store(built.store_dir)
    link_all(store)
    assessment = assess(store)
    truth_path = Path(built.data) / "ground_truth.json"
    yield store, assessment, truth_path, json.loads(truth_path.read_text(encoding="utf-8"))
    store.close()
