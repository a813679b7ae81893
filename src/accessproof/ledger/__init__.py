"""Tamper-evident evidence ledger: every record accessproof keeps is sealed in an RFC 9162 Merkle tree.

Entry point: ``open_ledger(store_dir, conn=None)``; seal records with ``Ledger.seal([SealRecord…])``.
"""

from accessproof.ledger.api import init_store, open_ledger
from accessproof.ledger.entry import Entry, EntryError, decode_entry, make_entries, make_entry
from accessproof.ledger.ledger import Ledger, LedgerError, SealRecord
from accessproof.ledger.payloads import DuckDBPayloads, PayloadStore, RecordRef
from accessproof.ledger.verify import VerifyReport, verify_ledger

__all__ = [
    "DuckDBPayloads",
    "Entry",
    "EntryError",
    "Ledger",
    "LedgerError",
    "PayloadStore",
    "RecordRef",
    "SealRecord",
    "VerifyReport",
    "decode_entry",
    "init_store",
    "make_entries",
    "make_entry",
    "open_ledger",
    "verify_ledger",
]
