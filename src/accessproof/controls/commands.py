"""Command line for controls: ``controls_app`` (``list``, ``assess``, ``findings``, ``score``) and
``policy_app`` (``check``, ``show``).

The lead mounts them on the main CLI::

    app.add_typer(controls_app, name="controls")   # accessproof controls list|assess|findings|score
    app.add_typer(policy_app, name="policy")       # accessproof policy check|show
    app.command("assess")(assess_cmd)              # optional shortcuts
    app.command("findings")(findings_cmd)

``build_app()`` does that for tests and standalone use. Errors are one line on stderr, exit code 2.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from accessproof.controls.engine import assess, load_catalogue, select_controls
from accessproof.controls.findings import list_findings
from accessproof.controls.policy import check_policy, load_policy
from accessproof.output import emit, one_line_errors, say
from accessproof.store import open_store

controls_app = typer.Typer(help="Controls as code: the catalogue, assessments and findings.", no_args_is_help=True)
policy_app = typer.Typer(help="Access policy as code.", no_args_is_help=True)

StoreOpt = Annotated[
    str | None, typer.Option("--store", envvar="ACCESSPROOF_STORE", help="Store directory (default ./.accessproof).")
]
ControlsDirOpt = Annotated[
    list[Path] | None,
    typer.Option("--controls-dir", help="A folder of your own controls (<id>/control.yaml + query.sql); repeatable."),
]
PolicyOpt = Annotated[
    Path | None, typer.Option("--policy", envvar="ACCESSPROOF_POLICY", help="Access policy YAML (default: demo policy).")
]
class Format(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"
    json = "json"


def _params(values: list[str] | None) -> dict[str, str]:
    params = {}
    for v in values or []:
        k, eq, val = v.partition("=")
        if not eq or not k.strip():
            raise ValueError(f"--param {v!r}: expected name=value or control_id.name=value")
        params[k.strip()] = val.strip()
    return params


@controls_app.command("list")
@one_line_errors
def list_cmd(
    select: Annotated[list[str] | None, typer.Option("--select", "-s", help="Ids, frameworks, tag:…")] = None,
    controls_dir: ControlsDirOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """The catalogue: id, title, severity, layer, frequency and framework mappings."""
    cat = load_catalogue(controls_dir)
    rows = [{"id": c.id, "title": c.title, "severity": c.severity, "layer": c.layer, "stage": c.stage,
             "frequency": c.frequency, "frameworks": " ".join(c.mappings()),
             "parameters": ", ".join(f"{k}={p.default}" for k, p in c.parameters.items())}
            for c in select_controls(cat, select)]
    emit(rows, fmt, ["id", "title", "severity", "layer", "stage", "frequency", "frameworks", "parameters"],
          title=f"{len(rows)} controls")


@one_line_errors
def assess_cmd(
    store: StoreOpt = None,
    select: Annotated[list[str] | None, typer.Option("--select", "-s", help=(
        "Control ids (wildcards), frameworks (soc2, nist_800_53_r5:AC-2), tag:…, layer:…, stage:…; repeatable."))
    ] = None,
    controls_dir: ControlsDirOpt = None,
    policy: PolicyOpt = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help=(
        "Override a parameter: name=value (every control declaring it) or control_id.name=value."))] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Assess as of this time (default: latest event).")
                     ] = None,
    relink: Annotated[bool, typer.Option("--relink", help="Re-run identity resolution and linking first.")
                      ] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Run the controls; store results, runs and findings; print a run per control."""
    when = None
    if as_of:
        from accessproof.sources.base import Reject, parse_date_or_time

        try:
            when = parse_date_or_time(as_of, tz="UTC", what="--as-of")
        except Reject as e:
            raise ValueError(str(e)) from None
    s = open_store(store)
    try:
        a = assess(s, select, controls_dir=controls_dir, params=_params(param), policy=policy, as_of=when,
                   relink=relink)
        from accessproof.evidence import seal_control_runs

        seal_control_runs(s, a.runs)  # every run is evidence that the control was tested
    finally:
        s.close()
    cols = ["control_id", "status", "population", "ok", "alarm", "skip", "info", "error", "seconds", "error_message"]
    if fmt is Format.json:
        sys.stdout.write(json.dumps(a.to_dict(), default=str, indent=2) + "\n")
    else:
        emit(a.runs, fmt, cols, title=f"assessment {a.assessment_id} as of {a.as_of} (policy {a.policy_digest})")
    if fmt is Format.table:
        c = a.counts()
        say(f"{len(a.runs)} controls in {a.seconds:.2f}s: {c['alarm']} alarm, {c['ok']} ok, {c['skip']} skip, "
                  f"{c['info']} info, {c['error']} error")
    if a.errors:
        raise typer.Exit(1)


@one_line_errors
def findings_cmd(
    store: StoreOpt = None,
    control: Annotated[str | None, typer.Option("--control", "-c")] = None,
    state: Annotated[str | None, typer.Option("--state", help="open | resolved | excepted")] = None,
    person: Annotated[str | None, typer.Option("--person")] = None,
    system: Annotated[str | None, typer.Option("--system")] = None,
    framework: Annotated[str | None, typer.Option("--framework", help="soc2, or soc2:CC6.2")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Findings from earlier assessments (newest first)."""
    if state and state not in ("open", "resolved", "excepted"):
        raise ValueError("--state must be open, resolved or excepted")
    s = open_store(store, read_only=True)
    try:
        rows = list_findings(s, control=control, state=state, person=person, system=system, framework=framework,
                             limit=limit)
    finally:
        s.close()
    cols = ["finding_id", "control_id", "state", "severity", "resource", "reason", "person_id", "system",
            "exception_id", "first_seen", "last_seen", "evidence_ids"]
    if fmt is Format.table:
        cols = ["control_id", "state", "severity", "resource", "reason", "exception_id"]
    emit(rows, fmt, cols, title=f"{len(rows)} findings")


@controls_app.command("score")
@one_line_errors
def score_cmd(
    ground_truth: Annotated[Path, typer.Argument(help="ground_truth.json of the demo simulator")],
    store: StoreOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Precision and recall of the latest runs against the demo simulator's injected failures."""
    from accessproof.controls.score import score

    s = open_store(store, read_only=True)
    try:
        res = score(s, ground_truth)
    finally:
        s.close()
    rows = [{"control_id": k, **v, "classes": ", ".join(v["classes"]), "missed": ", ".join(v["missed"])}
            for k, v in res.items()]
    emit(rows, fmt, ["control_id", "classes", "precision", "recall", "tp", "fp", "fn", "missed"])


@policy_app.command("check")
@one_line_errors
def policy_check_cmd(
    policy: PolicyOpt = None,
    store: StoreOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Validate the policy and name what it refers to that the store never saw: owners, courses and service
    accounts (errors, exit 1); entitlements never seen, entitlements no entry covers (warnings)."""
    pol = load_policy(policy)
    s = open_store(store)
    try:
        problems = check_policy(s, pol)
    finally:
        s.close()
    emit(problems, fmt, ["level", "kind", "item", "message"],
          title=f"policy {pol.digest}: {len(problems)} problem(s)")
    if any(p["level"] == "error" or strict for p in problems):
        raise typer.Exit(1)


@policy_app.command("show")
@one_line_errors
def policy_show_cmd(policy: PolicyOpt = None) -> None:
    """The policy's entitlements with class, defaults and conditions resolved, and its digest."""
    pol = load_policy(policy)
    rows = []
    for e in pol.entitlements:
        r = pol.resolved(e)
        rows.append({"id": e.id, "class": r.get("class"), "privileged": r.get("privileged", False),
                     "approvers": " + ".join(r.get("approvers") or []), "owner": r.get("system_owner") or "",
                     "conditions": json.dumps(r.get("conditions") or {}), "max_days": r.get("max_duration_days")})
    emit(rows, Format.table, ["id", "class", "privileged", "approvers", "owner", "conditions", "max_days"],
          title=f"policy {pol.digest}")


controls_app.command("assess")(assess_cmd)
controls_app.command("findings")(findings_cmd)


def build_app() -> typer.Typer:
    """A standalone app with the commands mounted as the lead would."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.add_typer(controls_app, name="controls")
    app.add_typer(policy_app, name="policy")
    app.command("assess")(assess_cmd)
    app.command("findings")(findings_cmd)
    return app
