"""``payloads.FAST_SHAPE`` in polars expressions: the same columns from the same rows, computed on a bare
join instead of inside DuckDB.

The SQL version spends most of verification's payload pass on string functions; polars evaluates the same
tests column-wise with the GIL released, in threads beside the one that reads the join (``verify.SHAPERS``).
Each test below mirrors one of ``FAST_SHAPE``. SQL's 1-based ``substr(s, k, n)`` is ``slice(k - 1, n)``
here, with the offsets taken in bytes (``len_bytes``) where SQL counts characters: they differ only where
an entry or its lookup columns are not ASCII, and such a row is never of the fast shape (it must be
printable ASCII and begin with its own lookup columns), so its cut-outs are dropped either way. The tests
run the crafted, forged and mutated entries of tests/ledger/test_ledger_fast_payloads.py through both
engines and compare every column.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from accessproof.ledger import vechash

#: the columns the bare join yields, in this order (the entry as stored: the text tests below only look at
#: entries of printable ASCII, which ``FAST_SHAPE`` requires too)
BARE_COLUMNS = ("idx", "entry", "record_type", "record_id", "retention", "data", "held")

#: what ``entry_rows`` returns, as the SQL version types it
SCHEMA = pa.schema(
    [
        ("idx", pa.int64()),
        ("entry", pa.binary()),
        ("shape", pa.int8()),
        ("digest", pa.string()),
        ("salt", pa.string()),
        ("salted", pa.binary()),
        ("gone", pa.bool_()),
        ("held", pa.bool_()),
        ("purge", pa.bool_()),
        ("record_type", pa.string()),
        ("record_id", pa.string()),
        ("data", pa.binary()),
    ]
)


def shaped(batch: pa.RecordBatch, source_key: str, subject_key: str, time_key: str) -> pa.RecordBatch:
    """``FAST_SHAPE``'s output for one batch of the bare join (``BARE_COLUMNS``). Only the text columns go
    through polars; the entry and payload bytes stay in Arrow (no copy into polars and back)."""
    pl, _plh = vechash._polars()
    entry = batch.column("entry")
    data = batch.column("data")
    # the bytes as text, unchecked: only rows of printable ASCII (valid UTF-8 then) go on as text
    unchecked = pc.cast(entry, options=pc.CastOptions(target_type=pa.string(), allow_invalid_utf8=True))
    printable = pc.fill_null(pc.ascii_is_printable(unchecked), False)
    text = pc.if_else(printable, unchecked, pa.scalar(None, pa.string()))
    names = ("record_type", "record_id", "retention")
    df: Any = pl.from_arrow(
        pa.table(
            [text, *(batch.column(n) for n in names), printable, pc.is_valid(data)],
            ["s", *names, "printable", "has_data"],
        )
    )
    col, lit = pl.col, pl.lit
    s = col("s")
    df = df.with_columns(
        p1=pl.concat_str([lit('{"id":"'), col("record_id"), lit('","payload_sha256":"')]),
        p2=pl.concat_str([lit('","retention":"'), col("retention"), lit('","salt":"')]),
    ).with_columns(l1=col("p1").str.len_bytes(), l2=col("p2").str.len_bytes())
    df = df.with_columns(
        digest=s.str.slice(col("l1"), 64),
        salt=s.str.slice(col("l1") + 64 + col("l2"), 32),
        subject=s.str.contains(subject_key, literal=True).cast(pl.Int32),
        time=s.str.contains(time_key, literal=True).cast(pl.Int32),
    )
    fast = (
        col("printable")
        & s.str.starts_with(col("p1"))
        & (s.str.slice(col("l1") + 64, col("l2")) == col("p2"))
        & (s.str.slice(col("l1") + 96 + col("l2"), 12) == lit('","sealed":"'))
        & s.str.ends_with(pl.concat_str([lit('","type":"'), col("record_type"), lit('"}')]))
        & ~s.str.contains("\\", literal=True)
        & ~pl.concat_str([col("record_id"), col("retention"), col("record_type")]).str.contains(
            '"', literal=True
        )
        & s.str.contains(source_key, literal=True)
        & ~s.str.contains('":","', literal=True)
        & ~col("digest").str.contains('"', literal=True)
        & ~col("salt").str.contains('"', literal=True)
        & (s.str.count_matches('"', literal=True) == 28 + 4 * col("subject") + 4 * col("time"))
    )
    df = df.with_columns(shape=pl.when(fast).then(col("subject") + 2 * col("time")).cast(pl.Int8))
    known = col("shape").is_not_null()
    yes = ~known | ~col("has_data") | (col("record_type") == "purge")
    out = df.select(
        "shape",
        pl.when(known).then(col("digest")).alias("digest"),
        pl.when(known).then(col("salt")).alias("salt"),
        # unhex(salt) where the salt is 32 hex digits (else NULL, as SQL's salted); joined to the payload below
        pl.when(known & col("has_data")).then(col("salt").str.decode("hex", strict=False)).alias("salt_bytes"),
        pl.when(yes).then(col("record_type")).alias("record_type"),
        pl.when(yes).then(col("record_id")).alias("record_id"),
    ).to_arrow()
    salted = pc.binary_join_element_wise(
        out.column("salt_bytes").cast(pa.binary()), data, pa.scalar(b"", pa.binary())
    ).combine_chunks()
    return pa.RecordBatch.from_arrays(
        [
            batch.column("idx"),
            entry,
            out.column("shape").combine_chunks(),
            out.column("digest").cast(pa.string()).combine_chunks(),
            out.column("salt").cast(pa.string()).combine_chunks(),
            salted,
            pc.is_null(data),
            batch.column("held"),
            pc.fill_null(pc.equal(batch.column("record_type"), "purge"), False),
            out.column("record_type").cast(pa.string()).combine_chunks(),
            out.column("record_id").cast(pa.string()).combine_chunks(),
            pc.if_else(pc.is_null(salted), data, pa.scalar(None, pa.binary())),
        ],
        schema=SCHEMA,
    )
