-- Every index on ledger_entries is paid for on each append; ingest appends one entry per record. Holds,
-- releases, purge manifests and control results are found through a partial index that holds only the
-- ledger's own entries (find_entries repeats its condition), and purge candidates (once a year, not per
-- record) are found by a scan.

DROP INDEX ledger_entries_record_type;
DROP INDEX ledger_entries_retention;
CREATE INDEX ledger_entries_own_types ON ledger_entries (record_type)
    WHERE record_type NOT IN ('raw', 'quarantine');
