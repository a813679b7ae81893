"""Administrative actions are evidence too: each one (token create/revoke, hold add/release, purge, key
init, schedule change) is sealed as an ``admin_action`` ledger entry whose payload — what, by whom, when,
with which arguments, never a secret — is kept in ``ledger_payloads`` so ``accessproof verify`` rehashes it.
They are kept for ever (retention class ``ledger_records``), like the ledger's own holds and purges.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from accessproof.ledger import SealRecord, decode_entry, open_ledger
from accessproof.store.base import Store

RECORD_TYPE = "admin_action"
RETENTION = "ledger_records"


def seal_admin_action(store: Store, action: str, by: str, details: dict[str, Any] | None = None) -> int:
    """Seal one administrative action; returns its ledger index (a checkpoint is signed if a key exists)."""
    ledger = open_ledger(store.dir, getattr(store, "con", None))
    at = datetime.now(UTC)
    action_id = uuid.uuid4().hex
    payload = orjson.dumps({"id": action_id, "action": action, "by": by, "at": at.isoformat(),
                            "details": details or {}}, option=orjson.OPT_SORT_KEYS, default=str)
    with ledger.storage.transaction():
        ledger.storage.put_payloads([(RECORD_TYPE, action_id, payload)])
        index = ledger.seal([SealRecord(RECORD_TYPE, action_id, "accessproof", at, payload, subject=by,
                                        retention=RETENTION, kind=action)])
    if ledger.signer is not None:
        ledger.checkpoint()
    return index


def admin_actions(store: Store) -> list[dict[str, Any]]:
    """Every sealed administrative action, oldest first, with its ledger index."""
    ledger = open_ledger(store.dir, getattr(store, "con", None))
    rows = [(int(idx), decode_entry(bytes(data)).id) for idx, data in
            ledger.storage.find_entries(record_types=[RECORD_TYPE])]
    payloads = ledger.storage.get_payloads(RECORD_TYPE, [rid for _, rid in rows])
    return [{"index": idx, **orjson.loads(payloads[rid])} for idx, rid in rows if payloads.get(rid)]
