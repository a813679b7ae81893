"""``payloads.FAST_SHAPE`` in polars expressions: the same columns from the same rows, computed on a bare
join instead of inside DuckDB.

The SQL version spends most of verification's payload pass on string functions (~450 ms per 100k entries
against ~135 ms for the join alone, timed on the bench/ledger store); polars evaluates the same tests
column-wise with the GIL released, in the thread that reads the join (~310 ms for both together). Each line below mirrors one line of ``FAST_SHAPE`` (SQL's
1-based ``substr(s, k, n)`` is ``slice(k - 1, n)`` here; both count code points), and the tests run the
crafted, forged and mutated entries of tests/ledger/test_ledger_fast_payloads.py through both and
compare every column.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from accessproof.ledger import vechash

#: the columns the bare join yields, in this order: ``s`` is the entry as text (NULL unless valid UTF-8,
#: DuckDB's ``try(decode(entry))`` as in ``FAST_SHAPE``), ``raw_entry`` its bytes only where ``s`` is NULL
BARE_COLUMNS = ("idx", "s", "raw_entry", "record_type", "record_id", "retention", "data", "held")

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
    """``FAST_SHAPE``'s output for one batch of the bare join (``BARE_COLUMNS``)."""
    pl, _plh = vechash._polars()
    df: Any = pl.from_arrow(batch)
    col, lit = pl.col, pl.lit
    s = col("s")
    df = df.with_columns(
        entry=pl.coalesce([s.cast(pl.Binary), col("raw_entry")]),
        plain_claims=~pl.concat_str([col("record_id"), col("retention"), col("record_type")]).str.contains(
            '"', literal=True
        ),
        p1=pl.concat_str([lit('{"id":"'), col("record_id"), lit('","payload_sha256":"')]),
        p2=pl.concat_str([lit('","retention":"'), col("retention"), lit('","salt":"')]),
        tail=pl.concat_str([lit('","type":"'), col("record_type"), lit('"}')]),
    ).with_columns(l1=col("p1").str.len_chars(), l2=col("p2").str.len_chars())
    fast = (
        s.str.starts_with(col("p1"))
        & (s.str.slice(col("l1") + 64, col("l2")) == col("p2"))
        & (s.str.slice(col("l1") + 96 + col("l2"), 12) == lit('","sealed":"'))
        & s.str.ends_with(col("tail"))
        & ~s.str.contains("\\", literal=True)
        & col("plain_claims")
        & s.str.contains(source_key, literal=True)
        & ~s.str.contains('":","', literal=True)
    )
    keys = s.str.contains(subject_key, literal=True).cast(pl.Int8) + 2 * s.str.contains(
        time_key, literal=True
    ).cast(pl.Int8)
    df = df.with_columns(shape=pl.when(fast).then(keys).otherwise(None).cast(pl.Int8))
    known = col("shape").is_not_null()
    df = df.with_columns(
        digest=pl.when(known).then(s.str.slice(col("l1"), 64)),
        salt=pl.when(known).then(s.str.slice(col("l1") + 64 + col("l2"), 32)),
    )
    hex_salt = col("salt").str.contains("^[0-9a-fA-F]{32}$")
    yes = col("shape").is_null() | col("data").is_null() | (col("record_type") == "purge")
    table = df.select(
        "idx",
        "entry",
        "shape",
        "digest",
        "salt",
        # unhex(salt), where SQL's salted will not be NULL; joined to the payload below
        pl.when(col("data").is_not_null() & hex_salt).then(col("salt").str.decode("hex")).alias("salted"),
        col("data").is_null().alias("gone"),
        "held",
        (col("record_type") == "purge").alias("purge"),
        pl.when(yes).then(col("record_type")).alias("record_type"),
        pl.when(yes).then(col("record_id")).alias("record_id"),
        "data",
    ).to_arrow()
    table = table.cast(SCHEMA)
    data = table.column("data")
    salted = pc.binary_join_element_wise(table.column("salted"), data, pa.scalar(b"", pa.binary()))
    table = table.set_column(5, "salted", salted).set_column(
        11, "data", pc.if_else(pc.is_null(salted), data, pa.scalar(None, pa.binary()))
    )
    table = table.combine_chunks()
    return table.to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], schema=SCHEMA)
