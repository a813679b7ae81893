"""Stores behind one small interface (``base.Store``): DuckDB embedded, PostgreSQL for the server."""

from __future__ import annotations

import os
from pathlib import Path

from accessproof.store.base import Batch, BatchResult, Store, StoreError

DEFAULT_STORE = ".accessproof"


def store_location(store: str | os.PathLike | None = None) -> str:
    """``--store`` if given, else ``ACCESSPROOF_STORE``, else ``./.accessproof``."""
    return str(store or os.environ.get("ACCESSPROOF_STORE") or DEFAULT_STORE)


def open_store(store: str | os.PathLike | None = None, *, read_only: bool = False) -> Store:
    """Open the store named by a directory path (DuckDB) or a ``postgresql://`` URL (``store.postgres``)."""
    loc = store_location(store)
    if loc.startswith(("postgresql://", "postgres://")):
        from accessproof.store.postgres import PostgresStore

        return PostgresStore(loc, read_only=read_only)
    from accessproof.store.duckdb import DuckDBStore

    return DuckDBStore(Path(loc), read_only=read_only)


__all__ = ["Batch", "BatchResult", "Store", "StoreError", "open_store", "store_location"]
