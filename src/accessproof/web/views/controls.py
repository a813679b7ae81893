"""Controls (list, one control with its SQL, history and findings, run now) and findings (list, one finding
with its evidence chain)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from accessproof.api.auth import Principal
from accessproof.api.deps import using_store
from accessproof.lifecycle import IN_LIST
from accessproof.web import charts, data, evidence
from accessproof.web.pages import NotFound, back, check_csrf, reader, render, runner, with_store

router = APIRouter()
FINDING_STATES = ("open", "excepted", "resolved")


@router.get("/controls", response_class=HTMLResponse)
def controls(request: Request, framework: str = "", state: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof.audit.matrix import build_matrix

    with using_store(request) as store:
        m = build_matrix(store)
        history = data.assessments(store)
        runs = _pass_history(store)
    rows = []
    for c in m.controls:
        c["state"] = data.control_state(c)
        if framework and not c["frameworks"].get(framework):
            continue
        if state and c["state"] != state:
            continue
        c["spark"] = charts.sparkline(runs.get(c["control_id"], []))
        rows.append(c)
    rank = {"failing": 0, "error": 1, "not run": 2, "passing": 3}
    sev = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    rows.sort(key=lambda c: (rank[c["state"]], sev.get(c["severity"] or "", 9), -(c["open_findings"] or 0),
                             c["control_id"]))
    return render(request, "controls.html", page="controls", rows=rows, m=m, assessments=len(history),
                  frameworks=list(m.summary.get("frameworks", {})), filters={"framework": framework, "state": state})


def _pass_history(store: Any) -> dict[str, list[float | None]]:
    if not data.table_exists(store, "control_runs"):
        return {}
    out: dict[str, list[float | None]] = {}
    for cid, ok, alarm in store.query(
            "SELECT control_id, ok, alarm FROM control_runs WHERE status = 'completed' ORDER BY started, run_id"):
        total = int(ok or 0) + int(alarm or 0)
        out.setdefault(cid, []).append(100.0 * int(ok or 0) / total if total else None)
    return {k: v[-20:] for k, v in out.items()}


@router.get("/controls/{control_id}", response_class=HTMLResponse)
def control(request: Request, control_id: str, state: str = "", system: str = "", person: str = "",
            _: Principal = Depends(reader)) -> HTMLResponse:
    if state and state not in FINDING_STATES:
        state = ""
    with using_store(request) as store:
        c = data.control_page(store, control_id, state=state, system=system, person=person)
    if c is None:
        raise NotFound(f"no control {control_id!r} in the catalogue")
    hist = list(reversed(c["history"]))
    c["chart"] = charts.line_chart([data.utc(h["started"]).strftime("%d %b %H:%M") for h in hist],
                                   [charts.Series("pass rate", charts.COLORS["pass"], [h["pass_rate"] for h in hist])],
                                   title="Pass rate per run", unit="%", y_max=100, width=640, height=180)
    return render(request, "control.html", page="controls", c=c, states=FINDING_STATES)


@router.post("/controls/{control_id}/run")
async def run_control(request: Request, control_id: str, principal: Principal = Depends(runner)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    try:
        summary = await with_store(request, _run, control_id)
    except ValueError as e:
        return back(f"/controls/{control_id}", err=f"the run failed: {str(e).splitlines()[0]}")
    return back(f"/controls/{control_id}", msg=summary)


def _run(store: Any, control_id: str) -> str:
    """Run one control now (the same ``assess`` the CLI and scheduler run) and seal the run."""
    from accessproof.controls import assess, load_catalogue
    from accessproof.evidence import seal_control_runs

    if control_id not in load_catalogue():
        raise ValueError(f"no control {control_id!r}")
    a = assess(store, control_id)
    seal_control_runs(store, a.runs)
    run = a.runs[0]
    if run["status"] == "error":
        raise ValueError(run.get("error_message") or "error")
    return (f"ran {control_id}: {run['population']} tested, {run['alarm']} alarm, {run['ok']} ok "
            f"(run {run['run_id']}, sealed in the ledger)")


@router.get("/findings", response_class=HTMLResponse)
def findings(request: Request, state: str = "open", control: str = "", severity: str = "", system: str = "",
             person: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof.controls import list_findings

    if state not in (*FINDING_STATES, "all"):
        state = "open"
    with using_store(request) as store:
        rows = list_findings(store, state=None if state == "all" else state, control=control or None,
                             system=system or None, person=person or None) \
            if data.table_exists(store, "findings") else []
        names = _names(store, sorted({f["person_id"] for f in rows if f.get("person_id")}))
    if severity:
        rows = [f for f in rows if f.get("severity") == severity]
    sev = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    rows.sort(key=lambda f: (sev.get(f.get("severity") or "", 9), f["control_id"], str(f["resource"])))
    return render(request, "findings.html", page="findings", rows=rows[:500], total=len(rows), names=names,
                  filters={"state": state, "control": control, "severity": severity, "system": system,
                           "person": person}, states=(*FINDING_STATES, "all"))


def _names(store: Any, ids: list[str]) -> dict[str, str]:
    if not ids or not data.table_exists(store, "persons_current"):
        return {}
    return dict(store.query(f"SELECT person_id, display_name FROM persons_current WHERE person_id IN {IN_LIST}",
                            [ids]))


@router.get("/findings/{finding_id}", response_class=HTMLResponse)
def finding(request: Request, finding_id: str, _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof.controls import load_catalogue

    with using_store(request) as store:
        f = evidence.finding(store, finding_id)
        if f is None:
            raise NotFound(f"no finding {finding_id!r}")
        nodes = evidence.chain(store, f)
        exc = evidence.covering_exception(store, f)
        names = _names(store, [f["person_id"]] if f.get("person_id") else [])
    control = load_catalogue().get(f["control_id"])
    return render(request, "finding.html", page="findings", f=f, nodes=nodes, exception=exc, control=control,
                  person_name=names.get(f.get("person_id")))
