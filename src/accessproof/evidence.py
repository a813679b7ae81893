"""Sealing what accessproof itself produces, so that testing a control is evidence too.

Ingest seals every raw and quarantined record as it stores them (``ingest.Ingestor``); this module seals
the rest: each control run of an assessment (when, over which population, with which result, under which
policy and parameters) as a ``control_result`` entry, and signs a checkpoint when a key exists.

The sealed payload (the run's row as sorted-key JSON) is kept in the ledger's ``ledger_payloads`` table in
the same transaction, so ``accessproof verify`` rehashes it: the entry proves what the run was when it
was sealed, and a changed or deleted copy fails verification at that entry's index.
"""

from __future__ import annotations

from typing import Any

import orjson

from accessproof.ledger import open_ledger
from accessproof.store.base import Store


def seal_control_runs(store: Store, runs: list[dict[str, Any]]) -> int | None:
    """Seal one entry per control run; returns the first ledger index (None when there was nothing)."""
    if not runs:
        return None
    con = getattr(store, "con", None)
    ledger = open_ledger(store.dir, con)
    payloads = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS, default=str) for r in runs]
    ids = [str(r["run_id"]) for r in runs]
    with ledger.storage.transaction():
        ledger.storage.put_payloads([("control_result", i, p) for i, p in zip(ids, payloads, strict=True)])
        first = ledger.seal_columns(
            ["control_result"] * len(runs),
            ids,
            ["accessproof:controls"] * len(runs),
            [r.get("finished") for r in runs],
            payloads,
            kinds=[str(r.get("control_id")) for r in runs],
        )
    if ledger.signer is not None:
        ledger.checkpoint()
    return first
