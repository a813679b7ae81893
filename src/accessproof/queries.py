"""Read-side queries shared by the CLI, the report and (later) the API. Parameters are always bound."""

from __future__ import annotations

from datetime import datetime

from accessproof.store.base import Store

EVENT_LIST_COLUMNS = [
    "time", "source", "action", "vendor_action", "actor_name", "target_name", "entitlement_id",
    "approval_ref", "outcome", "event_id",
]


def events(store: Store, *, source: str | None = None, action: str | None = None,
           subject: str | None = None, since: datetime | None = None, until: datetime | None = None,
           limit: int = 50) -> tuple[list[str], list[tuple]]:
    where, params = [], []
    if source:
        where.append("(source = ? OR source_type = ? OR source LIKE ?)")
        params += [source, source, source + ":%"]
    if action:
        where.append("action = ?")
        params.append(action)
    if subject:
        where.append("(actor_id ILIKE ? OR actor_name ILIKE ? OR target_id ILIKE ? OR target_name ILIKE ?)")
        params += [f"%{subject}%"] * 4
    if since:
        where.append("time >= ?")
        params.append(since)
    if until:
        where.append("time < ?")
        params.append(until)
    sql = f"SELECT {', '.join(EVENT_LIST_COLUMNS)} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY time DESC, event_id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return EVENT_LIST_COLUMNS, store.query(sql, params)


SOURCE_QUALITY_SQL = """
WITH ev AS (
  SELECT source, source_type, count(*) AS events, min(time) AS first_event, max(time) AS last_event,
         100.0 * count(time) / count(*) AS time_pct,
         100.0 * count(actor_id) / count(*) AS actor_pct,
         100.0 * count(coalesce(target_id, target_name)) / count(*) AS target_pct,
         100.0 * count(approval_ref) / count(*) AS approval_ref_pct,
         100.0 * count(environment) / count(*) AS environment_pct,
         100.0 * count(business_unit) / count(*) AS business_unit_pct,
         100.0 * sum(CASE WHEN action <> 'other' THEN 1 ELSE 0 END) / count(*) AS mapped_pct,
         count(*) - count(DISTINCT event_id) AS id_conflicts
  FROM events GROUP BY source, source_type
), wf AS (
  SELECT system AS source, 'workflow' AS source_type, count(*) AS events,
         min(coalesce(decided, opened, effective)) AS first_event,
         max(coalesce(decided, opened, effective)) AS last_event,
         100.0 * count(coalesce(decided, opened, effective)) / count(*) AS time_pct,
         100.0 * count(requester) / count(*) AS actor_pct,
         100.0 * count(subject) / count(*) AS target_pct,
         CAST(NULL AS DOUBLE) AS approval_ref_pct,
         100.0 * count(environment) / count(*) AS environment_pct,
         100.0 * count(business_unit) / count(*) AS business_unit_pct,
         CAST(NULL AS DOUBLE) AS mapped_pct, 0 AS id_conflicts
  FROM workflow_records GROUP BY system
), pe AS (
  SELECT system AS source, 'person' AS source_type, count(*) AS events, min(hired) AS first_event,
         max(coalesce(terminated, hired)) AS last_event, 100.0 * count(hired) / count(*) AS time_pct,
         CAST(NULL AS DOUBLE) AS actor_pct, 100.0 * count(email) / count(*) AS target_pct,
         CAST(NULL AS DOUBLE) AS approval_ref_pct, CAST(NULL AS DOUBLE) AS environment_pct,
         100.0 * count(business_unit) / count(*) AS business_unit_pct, CAST(NULL AS DOUBLE) AS mapped_pct,
         0 AS id_conflicts
  FROM persons GROUP BY system
)
SELECT * FROM ev UNION ALL SELECT * FROM wf UNION ALL SELECT * FROM pe
ORDER BY source_type, source
"""
SOURCE_QUALITY_COLUMNS = [
    "source", "source_type", "events", "first_event", "last_event", "time_pct", "actor_pct", "target_pct",
    "approval_ref_pct", "environment_pct", "business_unit_pct", "mapped_pct", "id_conflicts",
]


def source_quality(store: Store) -> tuple[list[str], list[tuple]]:
    """Counts, time span and how often the fields an assessor relies on are present."""
    return SOURCE_QUALITY_COLUMNS, store.query(SOURCE_QUALITY_SQL)


def quarantine_summary(store: Store) -> tuple[list[str], list[tuple]]:
    rows = store.query(
        "SELECT source_type, reason, count(*) FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 50"
    )
    return ["source_type", "reason", "records"], rows


def quarantined(store: Store, *, source_type: str | None = None, limit: int = 100,
                with_data: bool = False) -> tuple[list[str], list[tuple]]:
    cols = ["source_type", "position", "reason"]
    sql = "SELECT source_type, position, reason"
    if with_data:
        cols.append("data")
        sql += ", data"
    sql += " FROM quarantine"
    params: list = []
    if source_type:
        sql += " WHERE source_type = ?"
        params.append(source_type)
    sql += " ORDER BY file, position"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.query(sql, params)
    if with_data:
        rows = [(*r[:3], blob_text(r[3], DATA_SHOWN)) for r in rows]
    return cols, rows


#: bytes of a quarantined record shown with it
DATA_SHOWN = 2000


def blob_text(data: bytes | None, limit: int | None = None) -> str | None:
    """The first ``limit`` bytes as DuckDB prints a BLOB: printable ASCII as is, every other byte (and the
    quotes and the backslash) as ``\\xHH``, so that bytes that are not text stay visible and harmless."""
    if data is None:
        return None
    raw = bytes(data[:limit] if limit is not None else data)
    return "".join(chr(b) if 32 <= b <= 126 and b not in (34, 39, 92) else f"\\x{b:02X}" for b in raw)


def counts(store: Store) -> dict[str, int]:
    out = {}
    for table in ("raw_records", "events", "workflow_records", "persons", "quarantine"):
        out[table] = store.query(f"SELECT count(*) FROM {table}")[0][0]
    return out
