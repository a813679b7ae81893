"""Canonical tables, as column lists shared by every backend.

Plain SQL types only (VARCHAR, BIGINT, INTEGER, TIMESTAMPTZ, BLOB/BYTEA), JSON kept as text, so the same
definitions serve DuckDB now and PostgreSQL later. Column order is the insert order of the batch writer.
"""

from __future__ import annotations

RAW_COLUMNS: list[tuple[str, str]] = [
    ("raw_id", "VARCHAR"),
    ("source_type", "VARCHAR"),
    ("source", "VARCHAR"),
    ("file", "VARCHAR"),
    ("position", "VARCHAR"),
    ("sha256", "VARCHAR"),
    ("record_type", "VARCHAR"),  # event | workflow | person
    ("record_time", "TIMESTAMPTZ"),
    ("data", "BLOB"),
    ("run_id", "VARCHAR"),
]

EVENT_COLUMNS: list[tuple[str, str]] = [
    ("event_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("source_type", "VARCHAR"),
    ("time", "TIMESTAMPTZ"),
    ("action", "VARCHAR"),
    ("vendor_action", "VARCHAR"),
    ("actor_id", "VARCHAR"),
    ("actor_name", "VARCHAR"),
    ("actor_type", "VARCHAR"),
    ("target_system", "VARCHAR"),
    ("target_id", "VARCHAR"),
    ("target_name", "VARCHAR"),
    ("entitlement_type", "VARCHAR"),
    ("entitlement_id", "VARCHAR"),
    ("entitlement_name", "VARCHAR"),
    ("resource", "VARCHAR"),
    ("approval_ref", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("business_unit", "VARCHAR"),
    ("outcome", "VARCHAR"),
    ("before_json", "VARCHAR"),
    ("after_json", "VARCHAR"),
    ("class_uid", "INTEGER"),
    ("activity_id", "INTEGER"),
    ("src_ip", "VARCHAR"),
    ("user_agent", "VARCHAR"),
    ("raw_id", "VARCHAR"),
    ("attributes_json", "VARCHAR"),
]

WORKFLOW_COLUMNS: list[tuple[str, str]] = [
    ("record_id", "VARCHAR"),
    ("system", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("subject", "VARCHAR"),
    ("scope", "VARCHAR"),
    ("requester", "VARCHAR"),
    ("approvers_json", "VARCHAR"),
    ("opened", "TIMESTAMPTZ"),
    ("decided", "TIMESTAMPTZ"),
    ("effective", "TIMESTAMPTZ"),
    ("expires", "TIMESTAMPTZ"),
    ("status", "VARCHAR"),
    ("history_json", "VARCHAR"),
    ("parent_id", "VARCHAR"),
    ("decision", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("business_unit", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("compensating_control", "VARCHAR"),
    ("course", "VARCHAR"),
    ("completed", "TIMESTAMPTZ"),
    ("valid_until", "TIMESTAMPTZ"),
    ("qualification_status", "VARCHAR"),
    ("contract_start", "TIMESTAMPTZ"),
    ("contract_end", "TIMESTAMPTZ"),
    ("next_review", "TIMESTAMPTZ"),
    ("event_type", "VARCHAR"),
    ("raw_id", "VARCHAR"),
    ("attributes_json", "VARCHAR"),
]

PERSON_COLUMNS: list[tuple[str, str]] = [
    ("person_id", "VARCHAR"),
    ("system", "VARCHAR"),
    ("display_name", "VARCHAR"),
    ("email", "VARCHAR"),
    ("emails_json", "VARCHAR"),
    ("usernames_json", "VARCHAR"),
    ("worker_type", "VARCHAR"),
    ("supplier_id", "VARCHAR"),
    ("manager_id", "VARCHAR"),
    ("business_unit", "VARCHAR"),
    ("title", "VARCHAR"),
    ("hired", "TIMESTAMPTZ"),
    ("terminated", "TIMESTAMPTZ"),
    ("raw_id", "VARCHAR"),
]

QUARANTINE_COLUMNS: list[tuple[str, str]] = [
    ("quarantine_id", "VARCHAR"),
    ("source_type", "VARCHAR"),
    ("file", "VARCHAR"),
    ("position", "VARCHAR"),
    ("reason", "VARCHAR"),
    ("data", "BLOB"),
    ("run_id", "VARCHAR"),
]

RUN_COLUMNS: list[tuple[str, str]] = [
    ("run_id", "VARCHAR"),
    ("source_type", "VARCHAR"),
    ("started", "TIMESTAMPTZ"),
    ("finished", "TIMESTAMPTZ"),
    ("files", "INTEGER"),
    ("read", "BIGINT"),
    ("accepted", "BIGINT"),
    ("duplicate", "BIGINT"),
    ("quarantined", "BIGINT"),
    ("status", "VARCHAR"),
]

#: table name -> (columns, primary key)
TABLES: dict[str, tuple[list[tuple[str, str]], str]] = {
    "raw_records": (RAW_COLUMNS, "raw_id"),
    "events": (EVENT_COLUMNS, "raw_id, event_id"),
    "workflow_records": (WORKFLOW_COLUMNS, "raw_id"),
    "persons": (PERSON_COLUMNS, "raw_id"),
    "quarantine": (QUARANTINE_COLUMNS, "quarantine_id"),
    "ingest_runs": (RUN_COLUMNS, "run_id"),
}


def create_table_sql(name: str, blob_type: str = "BLOB") -> str:
    columns, _pk = TABLES[name]
    cols = ", ".join(f"{c} {t.replace('BLOB', blob_type)}" for c, t in columns)
    return f"CREATE TABLE IF NOT EXISTS {name} ({cols})"
