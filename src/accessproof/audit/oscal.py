"""The traceability matrix as an OSCAL assessment-results document, for tools that speak OSCAL.

``assessment_results(store)`` builds the document with compliance-trestle's Pydantic models
(``trestle.oscal.assessment_results.AssessmentResults``), so what it returns has passed OSCAL's own
constraints (UUID, token and date-time patterns, required fields); ``to_oscal_json`` serialises it wrapped in
its ``assessment-results`` root key. One ``result`` holds the latest state of every control:

* ``reviewed-controls`` — one ``control-selections`` entry per framework, listing the framework requirements
  the run controls are mapped to. OSCAL control ids are tokens, so requirement ids are mapped: NIST SP 800-53
  ids take the NIST OSCAL catalogue's form (``AC-2(3)`` → ``ac-2.3``); other frameworks get a prefixed slug
  (``soc2`` ``CC6.1`` → ``soc2-cc6.1``, ``cfr_part11`` ``11.10(d)`` → ``cfr_part11-11.10.d``). Each entry's
  description gives the original ids next to the OSCAL ones, and observations and findings carry the
  original ``framework:requirement`` as ``requirement`` props;
* ``observations`` — one per control run (the latest run of each control, as in the matrix): what was tested
  (population and counts by status, results digest, owner, retention, exceptions) with its relevant
  evidence: the run record itself (``urn:accessproof:control-run:<run id>``, with its ledger index when
  sealed) and every record id the run's alarm and error rows cite (``urn:accessproof:evidence:<id>``, an
  ``evidence-id`` prop, and the ledger index when the id is a sealed record);
* ``findings`` — one per open finding (target: the accessproof control as an ``objective-id``, status
  ``not-satisfied``, reason ``fail``), and one per control whose latest run completed with no open finding
  (status ``satisfied``, reason ``pass``); each links its run's observation. Excepted findings are not
  open: the exceptions that except them are props of the control's observation.

``import-ap``: accessproof has no OSCAL assessment plan; its control catalogue is the plan. Unless an
``import_ap`` href is given, ``import-ap`` points at a back-matter resource (``#<uuid>``) describing the
catalogue, so that the reference resolves inside the document; replace it with your own plan's href
(``accessproof matrix --format oscal --import-ap URL``).

Every UUID is ``uuid5`` of a fixed namespace and the run, finding or control id it stands for, and every
time comes from the store (run times, the data's ``as_of``), never the clock: the same store gives the same
document. accessproof's own props use the namespace ``urn:accessproof:oscal``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from accessproof import __version__
from accessproof.audit.matrix import FRAMEWORK_NAMES, Matrix, build_matrix, natural_key
from accessproof.store.base import Store

if TYPE_CHECKING:
    from trestle.oscal.assessment_results import AssessmentResults

__all__ = ["NS", "UUID_NAMESPACE", "assessment_results", "oscal_control_id", "to_oscal_json"]

#: namespace of accessproof's own props
NS = "urn:accessproof:oscal"
#: namespace of every uuid5 in the document
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, NS)
_NCNAME = re.compile(r"^[_A-Za-z][_A-Za-z0-9.\-]*$")


def _uuid(*parts: Any) -> str:
    return str(uuid.uuid5(UUID_NAMESPACE, "|".join(str(p) for p in parts)))


def _line(v: Any) -> str:
    """One line without surrounding blanks (OSCAL titles and prop values allow no line break)."""
    return " ".join(str(v).split()) if v is not None else ""


def _token(v: str, prefix: str = "x-") -> str:
    t = re.sub(r"[^_A-Za-z0-9.\-]+", "-", v).strip("-.") or "x"
    return t if _NCNAME.match(t) else prefix + t


def oscal_control_id(framework: str, requirement: str) -> str:
    """A framework requirement id as an OSCAL control id (a token)."""
    if framework == "nist_800_53_r5":
        m = re.fullmatch(r"\s*([A-Za-z]{2})-(\d+)\s*(?:\(\s*(\d+)\s*\))?\s*", requirement)
        if m:
            return f"{m[1].lower()}-{int(m[2])}" + (f".{int(m[3])}" if m[3] else "")
    slug = re.sub(r"[^a-z0-9.\-]+", ".", requirement.lower())
    slug = re.sub(r"\.{2,}", ".", slug).strip(".-") or "requirement"
    return _token(f"{framework}-{slug}" if framework else slug)


def _utc(v: Any) -> datetime | None:
    """UTC, cut to whole milliseconds: OSCAL (trestle) writes times to the millisecond, so a time with
    1-999 µs was written as ".000" and read back as a different value; cut here, it reads back the same."""
    if not isinstance(v, datetime):
        return None
    v = (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)
    return v.replace(microsecond=v.microsecond // 1000 * 1000)


def _props(*pairs: tuple[str, Any]) -> list[Any] | None:
    from trestle.oscal import common as oc

    out = []
    for name, value in pairs:
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, datetime):
                v = _utc(v).isoformat()  # type: ignore[union-attr]
            elif isinstance(v, float):
                v = f"{v:g}"
            text = _line(v)
            if text:
                out.append(oc.Property(name=name, ns=NS, value=text))
    return out or None


def _alarm_evidence(store: Store, run_ids: list[str]) -> dict[str, list[str]]:
    """Record ids cited by each run's alarm and error rows (sorted, distinct)."""
    out: dict[str, set[str]] = defaultdict(set)
    if not run_ids:
        return {}
    for run_id, ev in store.query("""
        SELECT run_id, evidence_ids_json FROM control_results
        WHERE run_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) AND status IN ('alarm', 'error')""", [run_ids]):
        try:
            ids = json.loads(ev) if ev else []
        except ValueError:
            ids = []
        out[run_id].update(str(i) for i in (ids if isinstance(ids, list) else [ids]) if i not in (None, ""))
    return {k: sorted(v) for k, v in out.items()}


def _ledger_indexes(store: Store, ids: list[str]) -> dict[str, int]:
    exists = store.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'ledger_entries'")
    if not ids or not exists[0][0]:
        return {}
    return {r[0]: int(r[1]) for r in store.query(
        "SELECT record_id, min(idx) FROM ledger_entries WHERE record_id IN (SELECT unnest(CAST(? AS VARCHAR[]))) GROUP BY 1", [ids])}


def _open_findings(store: Store) -> list[dict[str, Any]]:
    exists = store.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'findings'")
    if not exists[0][0]:
        return []
    rows = store.query_dicts("SELECT * FROM findings WHERE state = 'open' ORDER BY control_id, finding_id")
    for r in rows:
        try:
            ev = json.loads(r.pop("evidence_ids_json", None) or "[]")
        except ValueError:
            ev = []
        r["evidence_ids"] = [str(i) for i in ev] if isinstance(ev, list) else [str(ev)]
    return rows


def assessment_results(store: Store, matrix: Matrix | None = None, *, import_ap: str | None = None
                       ) -> AssessmentResults:
    """The OSCAL assessment-results document of ``store`` (see the module docstring)."""
    from trestle.oscal import OSCAL_VERSION
    from trestle.oscal import common as oc
    from trestle.oscal.assessment_results import AssessmentResults, ImportAp, LocalDefinitions1, Result

    m = matrix if matrix is not None else build_matrix(store)
    run_controls = [c for c in m.controls if c.get("latest_run_id")]
    run_ids = sorted(c["latest_run_id"] for c in run_controls)
    if not run_ids:
        raise ValueError("no control has been run on this store yet (run 'accessproof assess' first)")
    evidence = _alarm_evidence(store, run_ids)
    ledger = _ledger_indexes(store, sorted({*run_ids, *(i for ids in evidence.values() for i in ids)}))
    doc_key = ",".join(run_ids)

    tool_uuid = _uuid("component", "accessproof")
    origin = [oc.Origin(actors=[oc.OriginActor(type="tool", actor_uuid=tool_uuid)])]
    component = oc.SystemComponent(
        uuid=tool_uuid, type="software", title="accessproof",
        description="Controls as code over identity-system events linked to governance records, with results "
                    "sealed in a Merkle ledger.",
        props=_props(("version", __version__)), status=oc.Status(state="operational"))

    def requirement_refs(c: dict[str, Any]) -> list[str]:
        return [f"{fw}:{r}" for fw, reqs in (c.get("frameworks") or {}).items() for r in reqs]

    observations, obs_of = [], {}
    for c in run_controls:
        run_id = c["latest_run_id"]
        obs_uuid = _uuid("observation", run_id)
        obs_of[c["control_id"]] = obs_uuid
        run_ev = oc.RelevantEvidence(
            href=f"urn:accessproof:control-run:{quote(run_id, safe='')}",
            description=f"The control run {run_id}: every row it returned is in control_results, digest "
                        f"{c.get('results_digest') or 'n/a'}.",
            props=_props(("run-id", run_id), ("ledger-index", ledger.get(run_id)),
                         ("results-digest", c.get("results_digest"))))
        cited = [oc.RelevantEvidence(
            href=f"urn:accessproof:evidence:{quote(eid, safe='')}",
            description="A record cited by the run's alarm rows.",
            props=_props(("evidence-id", eid), ("ledger-index", ledger.get(eid)))) for eid in evidence.get(run_id, [])]
        if c["latest_status"] == "completed":
            desc = (f"{c['population'] or 0} resources tested: {c['ok'] or 0} ok, {c['alarm'] or 0} alarm, "
                    f"{c['skip'] or 0} skip, {c['info'] or 0} info, {c['error'] or 0} error. "
                    f"Open findings: {c['open_findings']}; excepted: {c['excepted_findings']}.")
        else:
            desc = f"The run failed: {c.get('latest_run_error_message') or 'error'}"
        observations.append(oc.Observation(
            uuid=obs_uuid, title=_line(f"{c['control_id']}: {c.get('control_title') or c['control_id']}"),
            description=desc,
            props=_props(("control-id", c["control_id"]), ("run-id", run_id),
                         ("assessment-id", c.get("latest_assessment_id")), ("status", c["latest_status"]),
                         ("population", c.get("population")), ("ok", c.get("ok")), ("alarm", c.get("alarm")),
                         ("skip", c.get("skip")), ("info", c.get("info")), ("error", c.get("error")),
                         ("pass-rate", c.get("pass_rate")), ("as-of", c.get("latest_as_of")),
                         ("severity", c.get("severity")), ("owner", c.get("owner")),
                         ("retention-class", c.get("retention_class")), ("retention", c.get("retention")),
                         ("workflow-source", c.get("workflow_sources")),
                         ("evidence-source", c.get("evidence_sources")),
                         ("requirement", requirement_refs(c)), ("open-findings", c["open_findings"]),
                         ("excepted-findings", c["excepted_findings"]), ("exception-id", c.get("exceptions")),
                         ("control-digest", c.get("control_digest")), ("policy-digest", c.get("policy_digest")),
                         ("newer-failed-run", c.get("latest_error"))),
            methods=["TEST"], types=["control-objective"], origins=origin,
            relevant_evidence=[run_ev, *cited],
            collected=_utc(c.get("latest_started")) or _utc(c.get("latest_as_of")) or _utc(m.as_of),
            remarks=c.get("control_objective") or None))

    by_control = {c["control_id"]: c for c in m.controls}
    findings = []
    for f in _open_findings(store):
        c = by_control.get(f["control_id"], {})
        title = c.get("control_title") or f["control_id"]
        related = ([oc.RelatedObservation(observation_uuid=obs_of[f["control_id"]])]
                   if f["control_id"] in obs_of else None)
        findings.append(oc.Finding(
            uuid=_uuid("finding", f["finding_id"]), title=_line(f"{title}: {f['resource']}")[:500],
            description=str(f.get("reason") or title),
            props=_props(("finding-id", f["finding_id"]), ("control-id", f["control_id"]), ("state", f["state"]),
                         ("severity", f.get("severity")), ("resource", f.get("resource")),
                         ("first-seen", f.get("first_seen")), ("last-seen", f.get("last_seen")),
                         ("reopened", f.get("reopened")), ("person-id", f.get("person_id")),
                         ("system", f.get("system")), ("account-id", f.get("account_id")),
                         ("entitlement", f.get("entitlement")), ("scope", f.get("scope")),
                         ("requirement", requirement_refs(c)), ("evidence-id", f["evidence_ids"])),
            origins=origin,
            target=oc.FindingTarget(type="objective-id", target_id=_token(f["control_id"]), title=_line(title),
                                    status=oc.ObjectiveStatus(state="not-satisfied", reason="fail")),
            related_observations=related))
    for c in run_controls:
        if c["latest_status"] != "completed" or c["open_findings"]:
            continue
        title = c.get("control_title") or c["control_id"]
        findings.append(oc.Finding(
            uuid=_uuid("satisfied", c["control_id"], c["latest_run_id"]), title=_line(f"{title}: satisfied"),
            description=(f"The latest run tested {c['population'] or 0} resources and left no open finding"
                         + (f" ({c['excepted_findings']} excepted under an approved exception)."
                            if c["excepted_findings"] else ".")),
            props=_props(("control-id", c["control_id"]), ("run-id", c["latest_run_id"]),
                         ("requirement", requirement_refs(c)), ("exception-id", c.get("exceptions"))),
            origins=origin,
            target=oc.FindingTarget(type="objective-id", target_id=_token(c["control_id"]), title=_line(title),
                                    status=oc.ObjectiveStatus(state="satisfied", reason="pass")),
            related_observations=[oc.RelatedObservation(observation_uuid=obs_of[c["control_id"]])]))

    selections = []
    reqs: dict[str, dict[str, str]] = defaultdict(dict)
    for c in run_controls:
        for fw, ids in (c.get("frameworks") or {}).items():
            for r in ids:
                reqs[fw][r] = oscal_control_id(fw, r)
    from accessproof.controls.engine import FRAMEWORKS

    rank = {k: i for i, k in enumerate(FRAMEWORKS)}
    for fw in sorted(reqs, key=lambda k: (rank.get(k, 99), k)):
        pairs = sorted(reqs[fw].items(), key=lambda kv: natural_key(kv[0]))
        oscal_ids = list(dict.fromkeys(oid for _, oid in pairs))
        selections.append(oc.ControlSelections(
            description=f"{FRAMEWORK_NAMES.get(fw, fw)} ({fw}) requirements tested by accessproof controls: "
                        + ", ".join(f"{r} = {oid}" for r, oid in pairs),
            props=_props(("framework", fw)),
            include_controls=[oc.SelectControlById(control_id=oid) for oid in oscal_ids]))
    if not selections:  # controls without any framework mapping: the accessproof controls themselves
        selections.append(oc.ControlSelections(
            description="accessproof controls (no framework mapping)",
            include_controls=[oc.SelectControlById(control_id=_token(c["control_id"])) for c in run_controls]))

    starts = [t for t in (_utc(c.get("latest_started")) for c in run_controls) if t]
    end = _utc(m.as_of) or max(starts)
    start = _utc(m.period_start) or min(starts)
    start = min(start, end)
    finished = [t for t in (_utc(c.get("latest_finished")) for c in run_controls) if t]
    last_modified = max(finished) if finished else end

    owners = sorted({str(c["owner"]) for c in m.controls if c.get("owner")})
    parties = [oc.Parties1(uuid=_uuid("party", o), type="organization", name=_line(o)) for o in owners]
    resource_uuid = _uuid("resource", "catalogue")
    catalogue_resource = oc.Resource(
        uuid=resource_uuid, title="accessproof control catalogue (stands in for the assessment plan)",
        description="accessproof has no OSCAL assessment plan: its control catalogue (one YAML and one SQL query "
                    "per control, with framework mappings) is the plan. Replace import-ap with your plan's href.",
        props=_props(("controls", len(m.controls)), ("version", __version__)))

    result = Result(
        uuid=_uuid("result", doc_key),
        title=_line(f"accessproof control assessment as of {end.isoformat()}"),
        description=(f"Latest result of {len(run_controls)} accessproof controls over identity-system and governance "
                     f"evidence from {start.isoformat()} to {end.isoformat()}: {m.summary.get('open_findings', 0)} open "
                     f"findings, {m.summary.get('excepted_findings', 0)} excepted."),
        start=start, end=end,
        props=_props(("as-of", end), ("period-start", start), ("controls", len(run_controls)),
                     ("open-findings", m.summary.get("open_findings")),
                     ("excepted-findings", m.summary.get("excepted_findings")),
                     ("exceptions-in-force", m.summary.get("exceptions_in_force"))),
        local_definitions=LocalDefinitions1(components=[component]),
        reviewed_controls=oc.ReviewedControls(
            description="Framework requirements the run accessproof controls are mapped to.",
            control_selections=selections),
        observations=observations or None,
        findings=findings or None)

    return AssessmentResults(
        uuid=_uuid("assessment-results", doc_key),
        metadata=oc.Metadata(
            title="accessproof traceability: assessment results", last_modified=last_modified,
            version=__version__, oscal_version=OSCAL_VERSION, props=_props(("as-of", end)),
            roles=[oc.Role(id="control-owner", title="Control owner")] if parties else None,
            parties=parties or None,
            responsible_parties=[oc.ResponsibleParty(role_id="control-owner",
                                                     party_uuids=[p.uuid for p in parties])] if parties else None),
        import_ap=ImportAp(
            href=import_ap or f"#{resource_uuid}",
            remarks=None if import_ap else "Placeholder: points at the back-matter resource describing the "
                                           "accessproof control catalogue, which stands in for an assessment plan."),
        results=[result],
        back_matter=oc.BackMatter(resources=[catalogue_resource]))


def to_oscal_json(store: Store, matrix: Matrix | None = None, *, import_ap: str | None = None) -> str:
    """The document as OSCAL JSON (wrapped in ``assessment-results``), indented, newline-terminated."""
    doc = assessment_results(store, matrix, import_ap=import_ap)
    return doc.oscal_serialize_json(pretty=True) + "\n"
