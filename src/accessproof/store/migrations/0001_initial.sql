-- The canonical evidence tables (store/schema.py, same columns in the same order) and the ledger's tables
-- (ledger/storage.py). Keys that ingest and the ledger guarantee unique are enforced here too.

CREATE TABLE raw_records (
    raw_id TEXT PRIMARY KEY, source_type TEXT, source TEXT, file TEXT, position TEXT, sha256 TEXT,
    record_type TEXT, record_time TIMESTAMPTZ, data BYTEA, run_id TEXT
);

CREATE TABLE events (
    event_id TEXT, source TEXT, source_type TEXT, time TIMESTAMPTZ, action TEXT, vendor_action TEXT,
    actor_id TEXT, actor_name TEXT, actor_type TEXT, target_system TEXT, target_id TEXT, target_name TEXT,
    entitlement_type TEXT, entitlement_id TEXT, entitlement_name TEXT, resource TEXT, approval_ref TEXT,
    environment TEXT, business_unit TEXT, outcome TEXT, before_json TEXT, after_json TEXT,
    class_uid INTEGER, activity_id INTEGER, src_ip TEXT, user_agent TEXT, raw_id TEXT, attributes_json TEXT
);

CREATE TABLE workflow_records (
    record_id TEXT, system TEXT, kind TEXT, subject TEXT, scope TEXT, requester TEXT, approvers_json TEXT,
    opened TIMESTAMPTZ, decided TIMESTAMPTZ, effective TIMESTAMPTZ, expires TIMESTAMPTZ, status TEXT,
    history_json TEXT, parent_id TEXT, decision TEXT, environment TEXT, business_unit TEXT, owner TEXT,
    compensating_control TEXT, course TEXT, completed TIMESTAMPTZ, valid_until TIMESTAMPTZ,
    qualification_status TEXT, contract_start TIMESTAMPTZ, contract_end TIMESTAMPTZ, next_review TIMESTAMPTZ,
    event_type TEXT, raw_id TEXT, attributes_json TEXT
);

CREATE TABLE persons (
    person_id TEXT, system TEXT, display_name TEXT, email TEXT, emails_json TEXT, usernames_json TEXT,
    worker_type TEXT, supplier_id TEXT, manager_id TEXT, business_unit TEXT, title TEXT, hired TIMESTAMPTZ,
    terminated TIMESTAMPTZ, raw_id TEXT
);

CREATE TABLE quarantine (
    quarantine_id TEXT PRIMARY KEY, source_type TEXT, file TEXT, position TEXT, reason TEXT, data BYTEA,
    run_id TEXT
);

CREATE TABLE ingest_runs (
    run_id TEXT PRIMARY KEY, source_type TEXT, started TIMESTAMPTZ, finished TIMESTAMPTZ, files INTEGER,
    read BIGINT, accepted BIGINT, duplicate BIGINT, quarantined BIGINT, status TEXT
);

-- idx is unique, checked at the end of each statement (DEFERRABLE), so that renumbering in one UPDATE works
-- as in DuckDB; the verifier still finds gaps, swaps and forged entries from the bytes.
CREATE TABLE ledger_entries (
    idx BIGINT NOT NULL, entry BYTEA NOT NULL, record_type TEXT NOT NULL, record_id TEXT NOT NULL,
    record_time TIMESTAMPTZ, retention TEXT,
    CONSTRAINT ledger_entries_idx UNIQUE (idx) DEFERRABLE INITIALLY IMMEDIATE
);

CREATE TABLE ledger_tiles (
    level INTEGER NOT NULL, idx BIGINT NOT NULL, width INTEGER NOT NULL, hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE ledger_partial_tiles (
    level INTEGER PRIMARY KEY, idx BIGINT NOT NULL, width INTEGER NOT NULL, hashes BYTEA NOT NULL
);

CREATE TABLE ledger_checkpoints (
    size BIGINT PRIMARY KEY, root BYTEA NOT NULL, note TEXT NOT NULL, created TIMESTAMPTZ NOT NULL
);

CREATE TABLE ledger_payloads (
    record_type TEXT NOT NULL, record_id TEXT NOT NULL, data BYTEA, PRIMARY KEY (record_type, record_id)
);

CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT);
