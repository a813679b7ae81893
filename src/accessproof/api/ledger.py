"""The ledger as an auditor checks it: verifier key, signed checkpoints (C2SP tlog-checkpoint), RFC 9162
inclusion and consistency proofs — the same JSON ``accessproof ledger proof|consistency`` prints, so that
the checking needs nothing from accessproof but the verifier key."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from accessproof.api.auth import READERS, require
from accessproof.api.deps import ERROR_RESPONSES, Page, fail, offset_page, using_store
from accessproof.ledger import Ledger, LedgerError, decode_entry, open_ledger
from accessproof.ledger.merkle import leaf_hash

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"], responses=ERROR_RESPONSES,
                   dependencies=[Depends(require(*READERS))])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@contextmanager
def held_ledger(request: Request) -> Iterator[Ledger]:
    """The store's ledger while this request holds the store; a ledger failure is a 409 with its reason."""
    with using_store(request) as store:
        try:
            yield open_ledger(store.dir, getattr(store, "con", None))
        except LedgerError as e:
            fail(409, "ledger", str(e))


def _checkpoint(row: Any) -> dict[str, Any]:
    return {"size": row.size, "root": _b64(row.root), "created": row.created.isoformat(), "note": row.note}


@router.get("")
def ledger_state(request: Request) -> dict[str, Any]:
    """Size, log origin and the latest signed checkpoint."""
    with held_ledger(request) as led:
        latest = led.latest_checkpoint()
        return {"origin": led.origin, "size": led.size, "signed": led.signer is not None,
                "latest_checkpoint": _checkpoint(latest) if latest else None}


@router.get("/key", response_class=PlainTextResponse)
def verifier_key(request: Request) -> str:
    """The verifier key (C2SP signed-note format); keep a copy the server cannot reach."""
    with held_ledger(request) as led:
        if not led.verifiers:
            fail(404, "no key", "this store has no signing key yet (POST /api/v1/admin/keys)")
        return str(led.verifiers[0]) + "\n"


@router.get("/checkpoints", response_model=Page)
def checkpoints(request: Request, limit: Annotated[int | None, Query()] = None,
                cursor: Annotated[str | None, Query()] = None) -> Page:
    """Every signed checkpoint, newest first."""
    with held_ledger(request) as led:
        rows = [_checkpoint(c) for c in reversed(led.checkpoints())]
    return offset_page(request, rows, limit, cursor)


@router.get("/checkpoint", response_class=PlainTextResponse)
def latest_checkpoint(request: Request) -> str:
    """The latest signed checkpoint note, as text (what an auditor keeps to check consistency later)."""
    with held_ledger(request) as led:
        latest = led.latest_checkpoint()
    if latest is None:
        fail(404, "no checkpoint", "nothing has been signed yet")
    return latest.note


@router.get("/entries/{index}")
def entry(request: Request, index: int) -> dict[str, Any]:
    """One ledger entry: its bytes, its leaf hash and what it says (type, id, source, subject, times)."""
    with held_ledger(request) as led:
        if not 0 <= index < led.size:
            fail(404, "not found", f"no entry at index {index}: the ledger holds {led.size}")
        data = led.entry(index)
    e = decode_entry(data)
    return {"index": index, "entry": _b64(data), "leaf_hash": leaf_hash(data).hex(),
            "decoded": {"type": e.type, "id": e.id, "source": e.source, "subject": e.subject,
                        "record_time": e.record_time, "retention": e.retention}}


@router.get("/proof/{index}")
def inclusion_proof(request: Request, index: int,
                    size: Annotated[int | None, Query(description="Tree size of an existing checkpoint.")] = None
                    ) -> dict[str, Any]:
    """An inclusion proof of entry ``index`` against a signed checkpoint (the latest, or a new one when
    the latest does not cover it)."""
    with held_ledger(request) as led:
        if not 0 <= index < led.size:
            fail(404, "not found", f"no entry at index {index}: the ledger holds {led.size}")
        if size is None:
            latest = led.latest_checkpoint()
            row = latest if latest is not None and latest.size > index else led.checkpoint()
        else:
            row = led.checkpoint_at(size)
            if row is None:
                fail(404, "no checkpoint", f"no checkpoint at size {size}")
            if index >= row.size:
                fail(400, "not covered", f"index {index} is not in the tree of size {row.size}")
        data = led.entry(index)
        proof = led.inclusion_proof(index, row.size)
    return {"index": index, "tree_size": row.size, "entry": _b64(data), "leaf_hash": leaf_hash(data).hex(),
            "inclusion_path": [_b64(h) for h in proof], "checkpoint": row.note}


@router.get("/consistency")
def consistency_proof(request: Request, old: Annotated[int, Query(description="The earlier tree size.")],
                      new: Annotated[int | None, Query(description="The later tree size (default: now).")] = None
                      ) -> dict[str, Any]:
    """A consistency proof between two tree sizes, with the checkpoints signed at them."""
    with held_ledger(request) as led:
        size = led.size
        new_size = size if new is None else new
        if not 0 <= old <= new_size <= size:
            fail(400, "invalid sizes", f"need 0 <= old <= new <= {size}")
        proof = led.consistency_proof(old, new_size)
        old_cp, new_cp = led.checkpoint_at(old), led.checkpoint_at(new_size)
        return {"old_size": old, "new_size": new_size, "old_root": _b64(led.root(old)),
                "new_root": _b64(led.root(new_size)), "consistency_path": [_b64(h) for h in proof],
                "old_checkpoint": old_cp.note if old_cp else None, "new_checkpoint": new_cp.note if new_cp else None}
