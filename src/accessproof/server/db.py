"""The server's own tables (created on first use) and the one transaction helper they share.

Plain column types only (as ``store.schema``), no keys the backends would treat differently; ids are
written by the code that owns each table. Times are UTC, passed in as parameters (never the database's
clock), so tests and replays can say what "now" is.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson

from accessproof.ledger import SealRecord, open_ledger
from accessproof.linking.sql import table_exists
from accessproof.store.base import Store

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    # where outgoing events go: URL, content mode, signing secret (or the environment variable holding
    # it), event-type filter (JSON list of globs over short types), how often to try
    "outbox_endpoints": (
        ("name", "VARCHAR"), ("url", "VARCHAR"), ("mode", "VARCHAR"), ("secret", "VARCHAR"),
        ("secret_env", "VARCHAR"), ("types_json", "VARCHAR"), ("max_attempts", "INTEGER"),
        ("enabled", "BOOLEAN"), ("created", "TIMESTAMPTZ"),
    ),
    # one row per CloudEvent, written in the transaction of the change it reports
    "outbox": (
        ("event_id", "VARCHAR"), ("type", "VARCHAR"), ("source", "VARCHAR"), ("subject", "VARCHAR"),
        ("time", "TIMESTAMPTZ"), ("data_json", "VARCHAR"), ("created", "TIMESTAMPTZ"),
    ),
    # one row per (event, endpoint): pending | delivered | dead
    "outbox_deliveries": (
        ("event_id", "VARCHAR"), ("endpoint", "VARCHAR"), ("status", "VARCHAR"), ("attempts", "INTEGER"),
        ("next_attempt", "TIMESTAMPTZ"), ("last_attempt", "TIMESTAMPTZ"), ("last_status", "INTEGER"),
        ("last_error", "VARCHAR"), ("delivered", "TIMESTAMPTZ"),
    ),
    # every attempt, kept: outcome delivered | retry | dead
    "outbox_attempts": (
        ("event_id", "VARCHAR"), ("endpoint", "VARCHAR"), ("attempt", "INTEGER"), ("attempted", "TIMESTAMPTZ"),
        ("status_code", "INTEGER"), ("error", "VARCHAR"), ("seconds", "DOUBLE"), ("outcome", "VARCHAR"),
    ),
    # cron-style schedules of assessments and walkthroughs
    "schedules": (
        ("name", "VARCHAR"), ("kind", "VARCHAR"), ("cron", "VARCHAR"), ("timezone", "VARCHAR"),
        ("selector_json", "VARCHAR"), ("params_json", "VARCHAR"), ("grace_seconds", "INTEGER"),
        ("exception_days", "INTEGER"), ("created", "TIMESTAMPTZ"),
    ),
    # one row per fire time: completed | error | missed
    "schedule_runs": (
        ("run_id", "VARCHAR"), ("schedule", "VARCHAR"), ("kind", "VARCHAR"), ("scheduled_for", "TIMESTAMPTZ"),
        ("started", "TIMESTAMPTZ"), ("finished", "TIMESTAMPTZ"), ("status", "VARCHAR"),
        ("result_id", "VARCHAR"), ("ledger_index", "BIGINT"), ("message", "VARCHAR"),
    ),
    # ingest runs and subjects waiting for an event-driven re-test
    "retest_queue": (
        ("queue_id", "VARCHAR"), ("ingest_run_id", "VARCHAR"), ("subject", "VARCHAR"), ("reason", "VARCHAR"),
        ("queued", "TIMESTAMPTZ"), ("done", "TIMESTAMPTZ"), ("changes", "INTEGER"), ("error", "VARCHAR"),
    ),
}


def ensure_tables(store: Store) -> bool:
    """Create the tables a writable store lacks; True when they all exist (a read-only store may lack them:
    readers then show nothing rather than fail). Checked once per open store."""
    if store in _ready:
        return True
    if getattr(store, "read_only", False):
        if not all(table_exists(store, name) for name in TABLES):
            return False
    else:
        for name, cols in TABLES.items():
            store.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c} {t}' for c, t in cols)})")
    _ready.add(store)
    return True


_ready: weakref.WeakSet = weakref.WeakSet()


def in_transaction(store: Store) -> bool:
    """True inside an explicit transaction: outside one, every statement gets a new transaction id."""
    first = store.query("SELECT txid_current()")
    return first == store.query("SELECT txid_current()")


@contextmanager
def transaction(store: Store) -> Iterator[None]:
    """One transaction, or the caller's when one is open (the caller then commits or rolls back)."""
    if in_transaction(store):
        yield
        return
    store.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        store.execute("ROLLBACK")
        raise
    store.execute("COMMIT")


def seal_record(store: Store, record_type: str, record_id: str, payload: dict[str, Any], *,
                when: datetime | None, kind: str | None = None, retention: str = "control_results") -> int:
    """Seal one record the server produced (in the caller's transaction, if one is open), keeping its
    payload (sorted-key JSON) in ``ledger_payloads``; returns its ledger index. Sign a checkpoint after
    the transaction commits (``sign_checkpoint``)."""
    ledger = open_ledger(store.dir, getattr(store, "con", None))
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)
    with ledger.storage.transaction():
        ledger.storage.put_payloads([(record_type, record_id, body)])
        return ledger.seal([SealRecord(record_type, record_id, "accessproof:server", when, body, kind=kind,
                                       retention=retention)])


def sign_checkpoint(store: Store) -> None:
    """Sign the current tree head when the store has a signing key."""
    ledger = open_ledger(store.dir, getattr(store, "con", None))
    if ledger.signer is not None:
        ledger.checkpoint()


def admin_action(store: Store, action: str, by: str, details: dict[str, Any]) -> None:
    """Seal a configuration change as an ``admin_action`` (the API's record of administrative acts)."""
    from accessproof.api.actions import seal_admin_action

    seal_admin_action(store, action, by, details)
