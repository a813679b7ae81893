-- What reads go by: events by time and by raw record, canonical rows by raw record, quarantine by run,
-- ledger entries by record id (proofs, holds), by type (holds, purge manifests) and by retention and time
-- (purge candidates).

CREATE INDEX events_time ON events (time);
CREATE INDEX events_raw_id ON events (raw_id, event_id);
CREATE INDEX workflow_records_raw_id ON workflow_records (raw_id);
CREATE INDEX persons_raw_id ON persons (raw_id);
CREATE INDEX quarantine_run_id ON quarantine (run_id);
CREATE INDEX ledger_entries_record_id ON ledger_entries (record_id);
CREATE INDEX ledger_entries_record_type ON ledger_entries (record_type);
CREATE INDEX ledger_entries_retention ON ledger_entries (retention, record_time);
