from __future__ import annotations

from pathlib import Path

import pytest

from tests.store.conftest import backend_store, pg_url, store_url  # noqa: F401  (fixtures for every test)

REPO = Path(__file__).resolve().parents[1]
SHARED_DEV = REPO.parent / "shared" / "data" / "dev"
BUNDLED = REPO / "data" / "samples"


def dev_data() -> Path:
    """The real samples: ../shared/data/dev when present, else the copy bundled in data/samples."""
    return SHARED_DEV if SHARED_DEV.exists() else BUNDLED


@pytest.fixture
def samples() -> Path:
    return dev_data()


@pytest.fixture
def store(tmp_path):
    from accessproof.store import open_store

    s = open_store(tmp_path / "store")
    yield s
    s.close()
