"""A small sealed demo store for the sampling and retrieval tests (60 people, 3 months): built with a signing
key, linked and assessed once per session, its control runs sealed as ``accessproof assess`` does. Tests read
it as it is, or change a copy (``store_copy``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


@dataclass(frozen=True)
class SealedDemo:
    store_dir: Path
    data_dir: Path
    start: datetime  # midnight before the first event
    end: datetime  # midnight after the last event (exclusive)


@pytest.fixture(scope="session")
def sealed_demo(tmp_path_factory: pytest.TempPathFactory) -> SealedDemo:
    from accessproof.controls import assess
    from accessproof.demo.run import build_demo_store
    from accessproof.evidence import seal_control_runs
    from accessproof.linking.link import link_all
    from accessproof.store import open_store

    built = build_demo_store(tmp_path_factory.mktemp("sampling-demo"), people=60, months=3, seal=True)
    store = open_store(built.store_dir)
    try:
        link_all(store)
        seal_control_runs(store, assess(store).runs)
        first, last = store.query("SELECT min(time), max(time) FROM events")[0]
    finally:
        store.close()
    day = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return SealedDemo(built.store_dir, built.data, day, end)


@pytest.fixture
def store_copy(sealed_demo: SealedDemo, tmp_path: Path) -> Path:
    """A private copy of the sealed demo store (signing key included) that a test may change."""
    dest = tmp_path / "store"
    shutil.copytree(sealed_demo.store_dir, dest)
    return dest
