"""``POST /api/v1/ingest/{source_type}``: a batch of vendor records, one per line (or any shape the CLI
reads from a file), through the same path as ``accessproof ingest``.

The response accounts for every record (read = accepted + duplicate + quarantined) and lists the
quarantined ones with position and reason. Mapped sources (``csv``, ``json``) name a bundled mapping
(``?mapping=qms_exceptions``); a server never reads mapping files a caller names.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request
from pydantic import BaseModel

from accessproof.api import intake
from accessproof.api.auth import require
from accessproof.api.deps import ERROR_RESPONSES, fail

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses={
    **ERROR_RESPONSES, 413: {"description": "Body over the configured limit"},
    415: {"description": "Not a body of records"}})


class QuarantinedRecord(BaseModel):
    position: str
    reason: str


class IngestResult(BaseModel):
    """``read == accepted + duplicate + quarantined``; ``quarantine`` lists up to 1000 set-aside records."""

    run_id: str
    delivery: str
    source_type: str
    read: int
    accepted: int
    duplicate: int
    quarantined: int
    quarantine: list[QuarantinedRecord]
    errors: list[str]
    seconds: float


@router.post("/ingest/{source_type}", response_model=IngestResult,
             dependencies=[Depends(require("ingest"))],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-ndjson": {"schema": {"type": "string"}},
                 "application/json": {"schema": {}},
                 "text/csv": {"schema": {"type": "string"}}}}})
async def ingest_batch(
    request: Request,
    source_type: str,
    background: BackgroundTasks,
    source_name: Annotated[str | None, Query(description="Name this source instance, e.g. okta:acme.",
                                             max_length=200)] = None,
    mapping: Annotated[str | None, Query(description="Bundled mapping for csv/json, e.g. qms_exceptions.",
                                         max_length=100)] = None,
    delivery: Annotated[str | None, Header(alias="Idempotency-Key", description=(
        "Your id for this batch; it becomes part of each record's position."))] = None,
) -> dict[str, Any]:
    """Ingest one batch of the vendor's records (JSON Lines; a JSON array, a wrapper object or CSV also do).

    Records already stored count as duplicates, so a retried batch adds nothing."""
    intake.check_source(source_type)
    options: dict[str, Any] = {}
    if source_type in ("csv", "json"):
        from accessproof.mapping import bundled_mappings

        if mapping not in bundled_mappings():
            fail(400, "mapping required", f"source type {source_type} needs ?mapping= one of "
                                          f"{', '.join(bundled_mappings())}")
        options["mapping"] = mapping
    elif mapping:
        fail(400, "unexpected mapping", f"source type {source_type} takes no mapping")
    delivery_id = intake.delivery_id(delivery)
    body = await intake.receive(request)
    try:
        if not intake.has_content(body):
            fail(400, "empty body", "the body holds no records")
        name = intake.record_file("api", source_type, delivery_id)
        outcome = await intake.ingest_locked(
            request, source_type, lambda ing: intake.file_chunks(ing, body, name), name=name, delivery=delivery_id,
            source_name=source_name, options=options)
    finally:
        body.close()
    assert isinstance(outcome, intake.Outcome)
    background.add_task(intake.retest_after, request, outcome)
    return outcome.as_dict()
