"""The one way in: ``open_ledger(store_dir)`` and the signing key files under ``<store>/keys/``.

The key file holds ``PRIVATE+KEY+…`` (mode 0600, refused if others can read it); ``ledger.vkey`` holds the
verifier key, which auditors should copy somewhere the store cannot reach, with exported checkpoints.
A store is a directory (DuckDB) or a ``postgresql://`` URL, whose key files live in the local directory
``store.postgres.store_home(url)`` (the signing key never goes into the database).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import duckdb

from accessproof.ledger.duckdb_storage import DuckDBLedgerStorage, compact_database
from accessproof.ledger.ledger import Ledger, LedgerError
from accessproof.ledger.note import NoteError, Signer, Verifier
from accessproof.ledger.payloads import DuckDBPayloads, PayloadStore
from accessproof.ledger.retention import load_policy
from accessproof.ledger.storage import LedgerStorage

DB_NAME = "accessproof.duckdb"
KEY_FILE = "ledger.key"
VKEY_FILE = "ledger.vkey"
POLICY_FILE = "retention.yaml"


def db_path(store_dir: str | os.PathLike[str]) -> Path:
    return Path(store_dir) / DB_NAME


def _is_url(store_dir: str | os.PathLike[str]) -> bool:
    return isinstance(store_dir, str) and store_dir.startswith(("postgresql://", "postgres://"))


def home_dir(store_dir: str | os.PathLike[str]) -> Path:
    """The directory of a store's local files (keys, retention.yaml): the store directory itself, or for
    a PostgreSQL URL its home (``store.postgres.store_home``)."""
    if _is_url(store_dir):
        from accessproof.store.postgres import store_home

        return store_home(str(store_dir))
    return Path(store_dir)


def keys_dir(store_dir: str | os.PathLike[str]) -> Path:
    return home_dir(store_dir) / "keys"


def load_signer(store_dir: str | os.PathLike[str]) -> Signer | None:
    path = keys_dir(store_dir) / KEY_FILE
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise LedgerError(f"signing key {path} is readable by others (mode {mode:o}); run chmod 600 on it")
    try:
        return Signer.parse(path.read_text())
    except NoteError as exc:
        raise LedgerError(f"signing key {path} is unusable: {exc}") from None


def load_verifier(store_dir: str | os.PathLike[str]) -> Verifier | None:
    path = keys_dir(store_dir) / VKEY_FILE
    if not path.exists():
        return None
    try:
        return Verifier.parse(path.read_text())
    except NoteError as exc:
        raise LedgerError(f"verifier key {path} is unusable: {exc}") from None


def parse_verifier_arg(value: str) -> Verifier:
    """A verifier key given on the command line, inline or as a file path."""
    text = Path(value).read_text() if Path(value).is_file() else value
    try:
        return Verifier.parse(text)
    except NoteError as exc:
        raise LedgerError(f"bad verifier key: {exc}") from None


def open_ledger(
    store_dir: str | os.PathLike[str],
    conn: Any = None,
    *,
    create: bool = True,
) -> Ledger:
    """The ledger of a store, on ``conn`` if given (e.g. ingest's connection: DuckDB or PostgreSQL) or on
    its own connection.

    Creates the ledger tables and the log origin on first use; loads the signing key and verifier key if
    ``accessproof init`` made them, and the store's ``retention.yaml`` or the packaged default policy.
    """
    store = home_dir(store_dir)
    owned = conn is None
    if conn is None:
        conn = _connect(store_dir, create)
    try:
        storage, payloads = _backend(conn)
        storage.setup()
        origin = storage.get_meta("origin")
        if origin is None:
            origin = f"accessproof.local/{os.urandom(8).hex()}"
            storage.set_meta("origin", origin)
        signer = load_signer(store)
        verifier = load_verifier(store)
        if verifier is None and (stored := storage.get_meta("verifier_key")):
            verifier = Verifier.parse(stored)
        verifiers = [v for v in (verifier, signer.verifier if signer else None) if v is not None]
        policy_path = store / POLICY_FILE
        policy = load_policy(policy_path if policy_path.exists() else None)
    except BaseException:
        if owned:
            conn.close()
        raise
    return Ledger(
        storage,
        origin=origin,
        signer=signer,
        verifiers=list(dict.fromkeys(verifiers)),
        policy=policy,
        payloads=payloads,
        on_close=conn.close if owned else None,
    )


def _connect(store_dir: str | os.PathLike[str], create: bool) -> Any:
    """A connection of the ledger's own: the store's DuckDB file, or the PostgreSQL store in a URL."""
    if _is_url(store_dir):
        from accessproof.store.base import StoreError
        from accessproof.store.postgres import connect

        try:
            return connect(str(store_dir), create=create)
        except StoreError as exc:
            raise LedgerError(str(exc)) from None
    store = Path(store_dir)
    path = db_path(store)
    if not path.exists() and not create:
        raise LedgerError(f"no store at {store} (no {DB_NAME}); run `accessproof init`")
    store.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path))
    except duckdb.Error as exc:
        raise LedgerError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None


def _backend(conn: Any) -> tuple[LedgerStorage, PayloadStore]:
    """Ledger storage and payload store for a DuckDB or PostgreSQL connection."""
    if isinstance(conn, duckdb.DuckDBPyConnection):
        return DuckDBLedgerStorage(conn), DuckDBPayloads(conn)
    from accessproof.ledger.postgres_storage import (
        PostgresLedgerStorage,
        PostgresPayloads,
        is_postgres_connection,
    )

    if is_postgres_connection(conn):
        return PostgresLedgerStorage(conn), PostgresPayloads(conn)
    raise LedgerError(f"no ledger storage for a {type(conn).__name__} connection")


def compact_store(store_dir: str | os.PathLike[str]) -> None:
    """After a purge, make the purged bytes leave the database files (no connection to it may be open
    in this process for DuckDB, which rewrites the file; PostgreSQL rewrites the payload tables)."""
    if _is_url(store_dir):
        from accessproof.ledger.postgres_storage import vacuum_payloads

        conn = _connect(store_dir, create=False)
        try:
            vacuum_payloads(conn)
        finally:
            conn.close()
        return
    compact_database(db_path(store_dir))


def init_store(store_dir: str | os.PathLike[str]) -> tuple[Ledger, Verifier]:
    """Create the store's ledger tables and a signing key (never overwriting one); returns the verifier."""
    kdir = keys_dir(store_dir)
    key_path = kdir / KEY_FILE
    if key_path.exists():
        raise LedgerError(f"a signing key already exists at {key_path}; refusing to replace it")
    ledger = open_ledger(store_dir)
    try:
        kdir.mkdir(parents=True, exist_ok=True)
        os.chmod(kdir, 0o700)
        signer = Signer.generate(ledger.origin)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(signer) + "\n")
        (kdir / VKEY_FILE).write_text(str(signer.verifier) + "\n")
        ledger.storage.set_meta("verifier_key", str(signer.verifier))
        ledger.signer = signer
        ledger.verifiers = [signer.verifier]
    except BaseException:
        ledger.close()
        raise
    return ledger, signer.verifier
