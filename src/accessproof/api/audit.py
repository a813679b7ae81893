"""What auditors take away: the traceability matrix, sealed evidence, reproducible samples and packages.

Thin over ``audit.commands.render`` (matrix in json/csv/xlsx/html/oscal), ``audit.retrieval.find_evidence``,
``audit.sample.take_sample``, ``audit.walkthrough.run_walkthrough`` and ``audit.package.build_package``
(through ``api.packages``), the functions ``accessproof matrix|evidence|sample|walkthrough|package`` call.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from accessproof.api import packages as P
from accessproof.api.auth import READERS, Principal, require
from accessproof.api.deps import (
    ERROR_RESPONSES,
    Page,
    decode_cursor,
    fail,
    jsonable,
    limit_of,
    offset_page,
    parse_time_param,
    using_store,
)
from accessproof.audit.commands import FORMATS, render

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=ERROR_RESPONSES)
read = [Depends(require(*READERS))]
MEDIA = {"csv": "text/csv; charset=utf-8", "json": "application/json", "oscal": "application/json",
         "html": "text/html; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("/matrix", dependencies=read, response_class=Response,
            responses={200: {"content": {m: {} for m in MEDIA.values()}}})
def matrix(request: Request, format: Annotated[str, Query(description=" | ".join(FORMATS))] = "json"
           ) -> Response:
    """The traceability matrix: requirement → control → sources → owner → retention → latest result →
    open findings → exceptions; OSCAL assessment results with ``format=oscal``."""
    fmt = format.lower().strip()
    if fmt not in FORMATS:
        fail(400, "invalid format", f"format must be one of {', '.join(FORMATS)}")
    with using_store(request) as store:
        try:
            data, _ = render(store, fmt)
        except ValueError as e:
            fail(409, "no matrix yet", str(e))
    headers = {"Content-Disposition": f'attachment; filename="matrix.{fmt if fmt != "oscal" else "oscal.json"}"'} \
        if fmt in ("csv", "xlsx") else None
    return Response(data, media_type=MEDIA[fmt], headers=headers)


@router.get("/evidence", response_model=Page, dependencies=read)
def evidence(
    request: Request,
    control: Annotated[str | None, Query(description="What evidences this control.")] = None,
    system: Annotated[str | None, Query(description="Source or source type, e.g. okta.")] = None,
    since: Annotated[str | None, Query(description="Record time from (ISO 8601).")] = None,
    until: Annotated[str | None, Query(description="Record time before (ISO 8601).")] = None,
    subject: Annotated[str | None, Query(description="A person (across their accounts) or an account.")] = None,
    limit: Annotated[int | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
) -> Page:
    """Sealed ledger entries by control, system, time and subject, oldest first; purged payloads are
    listed as purged, with when, by whom and the retention rule."""
    from accessproof.audit.retrieval import EvidenceError, find_evidence
    from accessproof.controls.engine import ControlError

    start, end = parse_time_param(since, "since"), parse_time_param(until, "until")
    pos = decode_cursor(cursor, 1)
    first = pos[0] if pos and isinstance(pos[0], int) and pos[0] >= 0 else 0
    with using_store(request) as store:
        try:
            found = find_evidence(store, control=control, system=system, start=start, end=end, subject=subject,
                                  limit=first + limit_of(request, limit) + 1)
        except (EvidenceError, ControlError) as e:
            fail(400, "invalid evidence query", str(e))
    return offset_page(request, [asdict(r) for r in found.rows], limit, cursor)


@router.get("/evidence/{index}", dependencies=read)
def sealed_record(request: Request, index: int) -> dict[str, Any]:
    """One sealed record: its ledger entry and the payload it seals (base64, exactly as kept), or why the
    payload is gone. Prove it with ``/api/v1/ledger/proof/{index}``."""
    from accessproof.ledger import LedgerError, decode_entry, open_ledger
    from accessproof.ledger.entry import payload_matches

    with using_store(request) as store:
        try:
            led = open_ledger(store.dir, getattr(store, "con", None))
        except LedgerError as e:
            fail(409, "ledger", str(e))
        if not 0 <= index < led.size:
            fail(404, "not found", f"no entry at index {index}: the ledger holds {led.size}")
        data = led.entry(index)
        e = decode_entry(data)
        payload = led.payloads.get([_ref(index, e)]).get(index) if led.payloads is not None else None
    out: dict[str, Any] = {"index": index, "type": e.type, "id": e.id, "source": e.source, "subject": e.subject,
                           "record_time": e.record_time, "sealed": e.sealed, "retention": e.retention,
                           "entry": base64.b64encode(data).decode()}
    if payload is None:
        out["payload"] = None
        out["payload_state"] = "purged or missing (see /api/v1/evidence?… for the purge record)"
    else:
        out["payload"] = base64.b64encode(payload).decode()
        out["payload_state"] = "present" if payload_matches(e, payload) else "does not match its sealed hash"
    return out


def _ref(index: int, e: Any) -> Any:
    from accessproof.ledger import RecordRef

    return RecordRef(index, e.type, e.id)


class SampleRequest(BaseModel):
    control: str = Field(description="Control id.")
    start: str = Field(alias="from", description="Period start (ISO 8601 date or time, UTC unless given).")
    end: str = Field(alias="to", description="Period end, exclusive.")
    size: int | None = Field(None, ge=1, le=100_000, description="Items to draw (default: by frequency).")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seed of the draw (default: random, recorded).")


@router.post("/samples", dependencies=[Depends(require(*READERS))])
def take_sample(request: Request, body: SampleRequest) -> dict[str, Any]:
    """Freeze a control's population for a period in the ledger and draw a reproducible sample; the
    response is the sample file (``accessproof.sample/1``) to package or keep."""
    from accessproof.audit.population import PopulationError
    from accessproof.audit.sample import take_sample as draw

    start, end = parse_time_param(body.start, "from"), parse_time_param(body.end, "to")
    if start is None or end is None or start >= end:
        fail(400, "invalid period", "'from' must be a time before 'to'")
    with using_store(request) as store:
        try:
            smp = draw(store, body.control, start, end, size=body.size, seed=body.seed)
        except PopulationError as e:
            fail(400, "cannot sample", str(e))
    return smp.document()


@router.get("/packages", dependencies=read)
def list_packages(request: Request) -> dict[str, Any]:
    """Packages built on this server, newest first, each with the result of verifying it."""
    with using_store(request) as store:
        return {"packages": P.list_packages(store)}


@router.post("/packages")
def build_package(request: Request, body: P.PackageRequest,
                  principal: Annotated[Principal, Depends(require(*READERS))]) -> dict[str, Any]:
    """Build an offline-verifiable audit package for a control's findings, a person's lifecycle or a sample
    (the document ``POST /api/v1/samples`` returned); download it from ``/api/v1/packages/{id}/zip``."""
    with using_store(request) as store:
        return P.build(store, body, by=principal.subject)


@router.get("/packages/{package_id}", dependencies=read)
def get_package(request: Request, package_id: str) -> dict[str, Any]:
    """What a package holds and how its verification went."""
    with using_store(request) as store:
        meta = P.get_package(store, package_id)
    if meta is None:
        fail(404, "not found", f"no package {package_id!r}")
    return meta


@router.get("/packages/{package_id}/zip", dependencies=read, response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}}})
def download_package(request: Request, package_id: str) -> FileResponse:
    """The package zip."""
    with using_store(request) as store:
        path = P.package_file(store, package_id)
    if path is None:
        fail(404, "not found", f"no package {package_id!r}")
    return FileResponse(path, media_type="application/zip", filename=path.name)


class WalkthroughRequest(BaseModel):
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Seed of the picks (default: random, recorded).")
    scenarios: list[str] | None = Field(None, description="role_change, supplier_onboarding, "
                                                          "contractor_offboarding, emergency_exception")
    item: str | None = Field(None, max_length=200, description="Walk this item (HRE-…, RITM…, EXC-…, a person).")
    relink: bool = Field(False, description="Re-run identity resolution and linking first.")


@router.post("/walkthroughs")
def start_walkthrough(request: Request, body: WalkthroughRequest,
                      principal: Annotated[Principal, Depends(require("analyst"))]) -> dict[str, Any]:
    """Follow one item of each scenario end to end (request → approval → grant → removal → evidence),
    checking every link; the result is sealed."""
    from accessproof.audit.walkthrough import WalkthroughError, run_walkthrough

    with using_store(request) as store:
        try:
            result = run_walkthrough(store, seed=body.seed, scenarios=body.scenarios, item=body.item,
                                     relink=body.relink)
        except WalkthroughError as e:
            fail(400, "invalid walkthrough", str(e))
    return {**result.as_dict(), "started_by": principal.subject}


@router.get("/walkthroughs", dependencies=read)
def list_walkthroughs(request: Request,
                      limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 50
                      ) -> dict[str, Any]:
    """Sealed walkthroughs, newest first, with their failed checks."""
    from accessproof.audit.walkthrough import list_walkthroughs as listed

    with using_store(request) as store:
        return {"walkthroughs": [jsonable(w) for w in listed(store, limit)]}
