"""Results and findings: what each control run found, and the life of each finding across runs.

Tables (created on first use):

* ``control_runs`` — one row per control per assessment: run id, control id and digest, started, finished,
  population (rows returned), counts by status, parameters (JSON), policy digest, ``as_of``, status
  (completed | error) and a ``results_digest`` (SHA-256 over the run's rows) so a sealed run proves its rows;
* ``control_results`` — every row every run returned (the tested population, not only the alarms);
* ``findings`` — one row per (control, resource) that ever alarmed, with a stable ``finding_id`` =
  SHA-256(control id + "|" + resource)[:32], ``first_seen`` / ``last_seen`` (assessment times),
  ``state`` (open | resolved | excepted), the ``exception_id`` that excepts it, and the latest reason,
  evidence ids and dimensions. Re-running updates ``last_seen``, resolves findings whose resource no longer
  alarms (a resource the run skipped or could not evaluate keeps its state) and reopens resolved ones
  that alarm again (``reopened`` counts how often).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from accessproof.controls.exceptions import match_exceptions
from accessproof.linking import sql as S
from accessproof.store.base import Store

if TYPE_CHECKING:
    from accessproof.controls.engine import Assessment, Control

REQUIRED = ("resource", "status", "reason", "evidence_ids")
#: dimension columns kept in their own columns (all extra columns also go to ``dimensions_json``)
KNOWN_DIMS = ("person_id", "system", "account_id", "entitlement_type", "entitlement", "entitlement_id", "scope")

RUN_COLUMNS = (
    ("run_id", "VARCHAR"), ("assessment_id", "VARCHAR"), ("control_id", "VARCHAR"), ("control_digest", "VARCHAR"),
    ("title", "VARCHAR"), ("severity", "VARCHAR"), ("frameworks_json", "VARCHAR"), ("started", "TIMESTAMPTZ"),
    ("finished", "TIMESTAMPTZ"), ("seconds", "DOUBLE"), ("query_seconds", "DOUBLE"), ("status", "VARCHAR"),
    ("error_message", "VARCHAR"), ("population", "BIGINT"), ("ok", "BIGINT"), ("alarm", "BIGINT"),
    ("skip", "BIGINT"), ("info", "BIGINT"), ("error", "BIGINT"), ("duplicates", "BIGINT"),
    ("parameters_json", "VARCHAR"), ("policy_digest", "VARCHAR"), ("as_of", "TIMESTAMPTZ"),
    ("results_digest", "VARCHAR"),
)
RESULT_COLUMNS = (
    ("run_id", "VARCHAR"), ("control_id", "VARCHAR"), ("finding_id", "VARCHAR"), ("resource", "VARCHAR"),
    ("status", "VARCHAR"), ("reason", "VARCHAR"), ("evidence_ids_json", "VARCHAR"),
    *((d, "VARCHAR") for d in KNOWN_DIMS), ("dimensions_json", "VARCHAR"),
)
FINDING_COLUMNS = (
    ("finding_id", "VARCHAR"), ("control_id", "VARCHAR"), ("resource", "VARCHAR"), ("state", "VARCHAR"),
    ("severity", "VARCHAR"), ("first_seen", "TIMESTAMPTZ"), ("last_seen", "TIMESTAMPTZ"),
    ("resolved_at", "TIMESTAMPTZ"), ("first_run_id", "VARCHAR"), ("last_run_id", "VARCHAR"),
    ("reopened", "INTEGER"), ("exception_id", "VARCHAR"), ("exception_expires", "TIMESTAMPTZ"),
    ("reason", "VARCHAR"), ("evidence_ids_json", "VARCHAR"), *((d, "VARCHAR") for d in KNOWN_DIMS),
    ("dimensions_json", "VARCHAR"), ("as_of", "TIMESTAMPTZ"),
)
_STATUS_RANK = "CASE status WHEN 'error' THEN 0 WHEN 'alarm' THEN 1 WHEN 'info' THEN 2 WHEN 'skip' THEN 3 ELSE 4 END"


def temp_table(store: Store, name: str, select_sql: str, params: list[Any] | None = None) -> None:
    """(Re)build a session-local scratch table (no write-ahead log traffic)."""
    store.execute(f"DROP TABLE IF EXISTS {S.ident(name)}")
    store.execute(f"CREATE TEMP TABLE {S.ident(name)} AS {select_sql}", params)


def ensure_tables(store: Store) -> None:
    for name, cols in (("control_runs", RUN_COLUMNS), ("control_results", RESULT_COLUMNS),
                       ("findings", FINDING_COLUMNS)):
        store.execute(f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c} {t}' for c, t in cols)})")


def new_run(assessment: Assessment, control: Control, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": uuid.uuid4().hex[:20], "assessment_id": assessment.assessment_id, "control_id": control.id,
        "control_digest": control.digest, "title": control.title, "severity": control.severity,
        "frameworks_json": json.dumps(control.frameworks, sort_keys=True), "started": datetime.now(UTC),
        "finished": None, "seconds": None, "query_seconds": None, "status": "running", "error_message": None,
        "population": 0, "ok": 0, "alarm": 0, "skip": 0, "info": 0, "error": 0, "duplicates": 0,
        "parameters_json": json.dumps(values, sort_keys=True, default=str),
        "policy_digest": assessment.policy_digest, "as_of": assessment.as_of, "results_digest": None,
        "_t0": datetime.now(UTC),
    }


def record_results(store: Store, control: Control, run: dict[str, Any], table: str = "_ctl_out") -> None:
    """Copy the control's rows from ``table`` into ``control_results`` (one row per resource)."""
    from accessproof.controls.engine import ControlError

    cols = S.columns(store, table)
    names = {c for c, _ in cols}
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ControlError(f"query returns no {', '.join(missing)} column(s)")
    ev_type = dict(cols)["evidence_ids"].upper()
    if ev_type.endswith("[]"):
        ev = "CAST(to_json(list_sort(list_distinct(CAST(evidence_ids AS VARCHAR[])))) AS VARCHAR)"
    else:
        ev = ("CASE WHEN evidence_ids IS NULL THEN '[]' WHEN CAST(evidence_ids AS VARCHAR) LIKE '[%' "
              "THEN CAST(evidence_ids AS VARCHAR) ELSE CAST(to_json([CAST(evidence_ids AS VARCHAR)]) AS VARCHAR) END")
    dims = [c for c, _ in cols if c not in REQUIRED]
    known = ", ".join(f"CAST({d} AS VARCHAR) AS {d}" if d in names else f"CAST(NULL AS VARCHAR) AS {d}"
                      for d in KNOWN_DIMS)
    dims_json = ("CAST(json_object(" + ", ".join(f"'{d}', {S.ident(d)}" for d in dims) + ") AS VARCHAR)"
                 if dims else "CAST(NULL AS VARCHAR)")
    status = "lower(trim(CAST(status AS VARCHAR)))"
    store.execute(f"""
      INSERT INTO control_results
      SELECT ?, ?, substr(sha256(? || '|' || resource), 1, 32), resource, status, reason, ev, {', '.join(KNOWN_DIMS)},
             dims
      FROM (
        SELECT *, row_number() OVER (PARTITION BY resource ORDER BY {_STATUS_RANK}, reason) AS _rn,
               count(*) OVER (PARTITION BY resource) AS _n
        FROM (
          SELECT coalesce(CAST(resource AS VARCHAR), '(no resource)') AS resource,
                 CASE WHEN {status} IN ('ok', 'alarm', 'skip', 'info', 'error') THEN {status} ELSE 'error' END
                   AS status,
                 CASE WHEN {status} IN ('ok', 'alarm', 'skip', 'info', 'error') OR {status} IS NULL
                        THEN CAST(reason AS VARCHAR)
                      ELSE 'invalid status ' || {status} || ': ' || coalesce(CAST(reason AS VARCHAR), '') END
                   AS reason,
                 {ev} AS ev, {known}, {dims_json} AS dims
          FROM {table}
        ) o0
      ) o WHERE _rn = 1
    """, [run["run_id"], control.id, control.id])
    run["duplicates"] = int(store.query(
        f"SELECT count(*) - count(DISTINCT coalesce(CAST(resource AS VARCHAR), '(no resource)')) FROM {table}")[0][0])


def update_findings(store: Store, control: Control, run: dict[str, Any]) -> None:
    """Open, refresh, except, resolve and reopen this control's findings from the run's rows."""
    now, rid = run["started"], run["run_id"]
    if control.exceptable:
        match_exceptions(store, rid, run["as_of"])
    else:
        temp_table(store, "_ctl_exc", """
          SELECT CAST(NULL AS VARCHAR) AS finding_id, CAST(NULL AS VARCHAR) AS exception_id,
                 CAST(NULL AS TIMESTAMPTZ) AS expires WHERE false""")
    temp_table(store, "_ctl_alarm", """
      SELECT r.*, x.exception_id, x.expires AS exception_expires
      FROM control_results r LEFT JOIN _ctl_exc x ON x.finding_id = r.finding_id
      WHERE r.run_id = ? AND r.status = 'alarm'
    """, [rid])
    dims = ", ".join(f"{d} = a.{d}" for d in KNOWN_DIMS)
    store.execute(f"""
      UPDATE findings SET
        reopened = findings.reopened + CASE WHEN findings.state = 'resolved' THEN 1 ELSE 0 END,
        state = CASE WHEN a.exception_id IS NOT NULL THEN 'excepted' ELSE 'open' END,
        last_seen = ?, last_run_id = ?, resolved_at = NULL, exception_id = a.exception_id,
        exception_expires = a.exception_expires, reason = a.reason, evidence_ids_json = a.evidence_ids_json,
        {dims}, dimensions_json = a.dimensions_json, severity = ?, as_of = ?
      FROM _ctl_alarm a WHERE findings.finding_id = a.finding_id
    """, [now, rid, control.severity, run["as_of"]])
    store.execute(f"""
      INSERT INTO findings
      SELECT a.finding_id, a.control_id, a.resource,
             CASE WHEN a.exception_id IS NOT NULL THEN 'excepted' ELSE 'open' END, ?, ?, ?, NULL, ?, ?, 0,
             a.exception_id, a.exception_expires, a.reason, a.evidence_ids_json, {', '.join('a.' + d for d in KNOWN_DIMS)},
             a.dimensions_json, ?
      FROM _ctl_alarm a WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.finding_id = a.finding_id)
    """, [control.severity, now, now, rid, rid, run["as_of"]])
    # resolved: no longer alarming (absent from the population, or ok / info); skip and error keep the state
    store.execute("""
      UPDATE findings SET state = 'resolved', resolved_at = ?, last_run_id = ?, exception_id = NULL,
                          exception_expires = NULL
      WHERE control_id = ? AND state <> 'resolved'
        AND NOT EXISTS (SELECT 1 FROM control_results r WHERE r.run_id = ? AND r.finding_id = findings.finding_id
                        AND r.status IN ('alarm', 'skip', 'error'))
    """, [now, rid, control.id, rid])
    for t in ("_ctl_alarm", "_ctl_exc"):
        store.execute(f"DROP TABLE IF EXISTS {t}")


def finish_run(store: Store, run: dict[str, Any]) -> None:
    """Counts, results digest and timing; insert the ``control_runs`` row (also for failed runs)."""
    finished = datetime.now(UTC)
    run["finished"] = finished
    run["seconds"] = round((finished - run.pop("_t0")).total_seconds(), 4)
    if run["status"] == "completed":
        counts = dict(store.query("SELECT status, count(*) FROM control_results WHERE run_id = ? GROUP BY status",
                                  [run["run_id"]]))
        for s in ("ok", "alarm", "skip", "info", "error"):
            run[s] = int(counts.get(s, 0))
        run["population"] = sum(int(v) for v in counts.values())
        row = store.query("""
          SELECT sha256(coalesce(string_agg(finding_id || '|' || status || '|' || coalesce(reason, '') || '|'
                                            || evidence_ids_json, chr(10) ORDER BY finding_id), ''))
          FROM control_results WHERE run_id = ?""", [run["run_id"]])
        run["results_digest"] = row[0][0]
    cols = [c for c, _ in RUN_COLUMNS]
    store.execute(f"INSERT INTO control_runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                  [run.get(c) for c in cols])


# ---------------------------------------------------------------- reading

def _decode(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        for k in ("evidence_ids_json", "dimensions_json", "parameters_json", "frameworks_json"):
            if k in r:
                v = r.pop(k)
                r[k.removesuffix("_json")] = json.loads(v) if v else ([] if k == "evidence_ids_json" else {})
    return rows


def list_findings(store: Store, *, control: str | None = None, state: str | None = None,
                  person: str | None = None, system: str | None = None, framework: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """Findings (evidence ids and dimensions decoded), newest first. ``framework`` is ``soc2`` or
    ``soc2:CC6.2``-style; it filters on the controls' mappings as last run."""
    if not S.table_exists(store, "findings"):
        return []
    where, params = [], []
    for col, val in (("f.control_id", control), ("f.state", state), ("f.person_id", person)):
        if val:
            where.append(f"{col} = ?")
            params.append(val)
    if system:
        where.append("(f.system = ? OR f.system LIKE ?)")
        params += [system, system + ":%"]
    sql = "SELECT f.* FROM findings f"
    if framework:
        fw, _, req = framework.partition(":")
        sql += (" JOIN (SELECT control_id, max(frameworks_json) AS fj FROM control_runs GROUP BY control_id) c "
                "ON c.control_id = f.control_id")
        where.append("c.fj LIKE ?")
        params.append(f'%"{fw}": [%' + (f'"{req}%' if req else ""))
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY f.last_seen DESC, f.control_id, f.resource"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return _decode(store.query_dicts(sql, params))


def run_results(store: Store, run_id: str, *, status: str | None = None) -> list[dict[str, Any]]:
    """Every row a run returned (status filter optional), evidence ids and dimensions decoded."""
    sql, params = "SELECT * FROM control_results WHERE run_id = ?", [run_id]
    if status:
        sql += " AND status = ?"
        params.append(status)
    return _decode(store.query_dicts(sql + " ORDER BY resource", params))


def latest_runs(store: Store) -> list[dict[str, Any]]:
    """The latest completed run of each control."""
    if not S.table_exists(store, "control_runs"):
        return []
    return _decode(store.query_dicts("""
      SELECT * FROM (
        SELECT r.*, row_number() OVER (PARTITION BY control_id ORDER BY started DESC, run_id DESC) AS rn
        FROM control_runs r WHERE status = 'completed'
      ) x WHERE rn = 1 ORDER BY control_id"""))


def runs_of(store: Store, assessment_id: str) -> list[dict[str, Any]]:
    return _decode(store.query_dicts("SELECT * FROM control_runs WHERE assessment_id = ? ORDER BY control_id",
                                     [assessment_id]))
