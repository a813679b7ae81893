"""Controls, their runs and results, findings, and starting an assessment.

Thin over ``controls.engine`` (catalogue, ``assess``), ``controls.findings`` (runs, results, findings) and
``evidence.seal_control_runs`` — what ``accessproof controls|assess|findings`` call. An assessment started
here runs the built-in catalogue under the packaged policy, and every control run is sealed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from accessproof.api.auth import READERS, Principal, require
from accessproof.api.deps import (
    ERROR_RESPONSES,
    Page,
    fail,
    jsonable,
    offset_page,
    parse_time_param,
    using_store,
)
from accessproof.controls import findings as F
from accessproof.controls.engine import Control, assess, load_catalogue
from accessproof.linking.sql import table_exists

router = APIRouter(prefix="/api/v1", tags=["controls"], responses=ERROR_RESPONSES)
read = [Depends(require(*READERS))]
Limit = Annotated[int | None, Query(description="Rows per page.")]
Cursor = Annotated[str | None, Query(description="The 'next' link's cursor.")]
SEVERITIES = ("critical", "high", "medium", "low", "info")
STATES = ("open", "resolved", "excepted")


def _control(c: Control, latest: dict[str, Any] | None) -> dict[str, Any]:
    out = c.model_dump(exclude={"sql", "path"})
    out["parameters"] = c.defaults
    out["mappings"] = c.mappings()
    out["latest_run"] = jsonable(latest) if latest else None
    return out


@router.get("/controls", dependencies=read)
def list_controls(request: Request) -> dict[str, Any]:
    """The catalogue, each control with its framework mappings and its latest completed run."""
    with using_store(request) as store:
        latest = {r["control_id"]: r for r in F.latest_runs(store)}
    return {"controls": [_control(c, latest.get(c.id)) for c in load_catalogue().values()]}


@router.get("/controls/{control_id}", dependencies=read)
def get_control(request: Request, control_id: str) -> dict[str, Any]:
    """One control: metadata, query and latest completed run."""
    c = load_catalogue().get(control_id)
    if c is None:
        fail(404, "not found", f"no control {control_id!r}")
    with using_store(request) as store:
        latest = next((r for r in F.latest_runs(store) if r["control_id"] == control_id), None)
    return {**_control(c, latest), "sql": c.sql}


@router.get("/runs/{run_id}/results", response_model=Page, dependencies=read)
def run_results(request: Request, run_id: str,
                status: Annotated[str | None, Query(description="ok, alarm, skip, info or error")] = None,
                limit: Limit = None, cursor: Cursor = None) -> Page:
    """Every row a control run returned: the tested population, not only the alarms."""
    with using_store(request) as store:
        if not table_exists(store, "control_runs") or not store.query(
                "SELECT 1 FROM control_runs WHERE run_id = ?", [run_id]):
            fail(404, "not found", f"no control run {run_id!r}")
        rows = F.run_results(store, run_id, status=status)
    return offset_page(request, rows, limit, cursor)


@router.get("/findings", response_model=Page, dependencies=read)
def list_findings(
    request: Request,
    control: Annotated[str | None, Query(description="Control id.")] = None,
    state: Annotated[str | None, Query(description="open, resolved or excepted")] = None,
    severity: Annotated[str | None, Query(description="critical, high, medium, low or info")] = None,
    subject: Annotated[str | None, Query(description="Person id, or part of the resource/account.")] = None,
    system: Annotated[str | None, Query(description="System, e.g. okta or okta:acme.")] = None,
    framework: Annotated[str | None, Query(description="soc2, or soc2:CC6.2")] = None,
    limit: Limit = None, cursor: Cursor = None,
) -> Page:
    """Findings with stable ids, first/last seen and state, newest first."""
    if state and state not in STATES:
        fail(400, "invalid state", f"state must be one of {', '.join(STATES)}")
    if severity and severity not in SEVERITIES:
        fail(400, "invalid severity", f"severity must be one of {', '.join(SEVERITIES)}")
    with using_store(request) as store:
        rows = F.list_findings(store, control=control, state=state, system=system, framework=framework)
    if severity:
        rows = [r for r in rows if r.get("severity") == severity]
    if subject:
        s = subject.lower()
        rows = [r for r in rows if r.get("person_id") == subject
                or any(s in str(r.get(k) or "").lower() for k in ("resource", "account_id"))]
    return offset_page(request, rows, limit, cursor)


@router.get("/findings/{finding_id}", dependencies=read)
def get_finding(request: Request, finding_id: str) -> dict[str, Any]:
    """One finding, with its evidence ids."""
    with using_store(request) as store:
        rows = [f for f in F.list_findings(store) if f["finding_id"] == finding_id]
    if not rows:
        fail(404, "not found", f"no finding {finding_id!r}")
    return jsonable(rows[0])


class AssessmentRequest(BaseModel):
    select: list[str] | None = Field(None, description="Control ids (wildcards), frameworks, tag:…, layer:…")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description=(
        "Parameter overrides: name (every control declaring it) or control_id.name"))
    as_of: str | None = Field(None, description="Assess as of this time (default: the latest event).")
    relink: bool = Field(False, description="Re-run identity resolution and linking first.")


@router.post("/assessments")
def start_assessment(request: Request, body: AssessmentRequest,
                     principal: Annotated[Principal, Depends(require("analyst"))]) -> dict[str, Any]:
    """Run the controls now; results, runs and findings are stored and every run is sealed."""
    from accessproof.evidence import seal_control_runs

    when = parse_time_param(body.as_of, "as_of")
    with using_store(request) as store:
        try:
            a = assess(store, body.select, params=dict(body.params), as_of=when, relink=body.relink)
        except ValueError as e:  # ControlError, or a parameter value of the wrong type
            fail(400, "invalid assessment", (str(e).splitlines() or [type(e).__name__])[0])
        first = seal_control_runs(store, a.runs)
    out = a.to_dict()
    out["started_by"] = principal.subject
    out["first_ledger_index"] = first
    out["runs"] = [jsonable(r) for r in a.runs]
    return out


@router.get("/assessments/{assessment_id}", dependencies=read)
def get_assessment(request: Request, assessment_id: str) -> dict[str, Any]:
    """The runs of one assessment."""
    with using_store(request) as store:
        runs = F.runs_of(store, assessment_id) if table_exists(store, "control_runs") else []
    if not runs:
        fail(404, "not found", f"no assessment {assessment_id!r}")
    return {"assessment_id": assessment_id, "runs": [jsonable(r) for r in runs]}
