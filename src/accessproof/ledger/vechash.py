"""SHA-256 over whole Arrow binary columns, outside the GIL: the verifier's hashing engine.

Python's hashlib costs about a microsecond per call here, most of it interpreter overhead, and keeps the
GIL for inputs under 2 KiB, so verification hashing in Python is bound to one core at well under the speed
of the hash itself. polars-hash (the ``sha2_256`` expression of the polars plugin, Rust's ``sha2`` crate)
hashes a column per call with the GIL released, so two reading threads hash two chunks at once.

Everything here returns what hashlib would: tests compare both on the RFC 9162 vectors and random data.
Without polars-hash installed, ``AVAILABLE`` is False and the callers hash with hashlib.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: polars-hash is installed (imported on first use: polars takes ~0.4 s to import, which commands that
#: never verify should not pay)
AVAILABLE = find_spec("polars_hash") is not None

_LEAF = pa.scalar(b"\x00", pa.binary())
_NODE = pa.scalar(b"\x01", pa.binary())
_NOTHING = pa.scalar(b"", pa.binary())
TILE_HEIGHT = 8  # as ledger.tiles; repeated here so this module depends on nothing of accessproof's


@cache
def _polars() -> tuple[Any, Any]:
    import polars
    import polars_hash

    return polars, polars_hash


def hex_digests(values: pa.Array) -> pa.Array:
    """SHA-256 of each value of a binary (or string) Arrow array without nulls, as lowercase hex strings
    (``large_string``), in order."""
    if not len(values):
        return pa.array([], pa.large_string())
    pl, plh = _polars()
    out = pl.Series("v", values).to_frame().select(plh.col("v").chash.sha2_256()).to_series().to_arrow()
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    if not pa.types.is_large_string(out.type):
        out = out.cast(pa.large_string())
    return out


def digests(values: pa.Array) -> bytes:
    """SHA-256 of each value, the 32-byte digests back to back."""
    hexes = hex_digests(values)
    if not len(hexes):
        return b""
    _validity, offsets, data = hexes.buffers()
    first = memoryview(offsets).cast("q")[hexes.offset]
    return bytes.fromhex(memoryview(data)[first : first + 64 * len(hexes)].tobytes().decode("ascii"))


def leaf_hashes(entries: pa.Array) -> bytes:
    """RFC 9162 leaf hashes SHA-256(0x00 ‖ entry) of a binary array without nulls, back to back."""
    return digests(pc.binary_join_element_wise(_LEAF, entries, _NOTHING))


def node_level(hashes: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right) over adjacent pairs of 32-byte hashes (back to back, an even count)."""
    pairs = len(hashes) // 64
    if not pairs:
        return b""
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(64), pairs, [None, pa.py_buffer(hashes)])
    return digests(pc.binary_join_element_wise(_NODE, fixed.cast(pa.binary()), _NOTHING))


def tile_roots(leaves: bytes) -> bytes:
    """The height-8 subtree roots of each full group of 256 leaf hashes, back to back (a partial last
    group contributes nothing: it is not a complete subtree yet)."""
    level = leaves[: len(leaves) // (32 << TILE_HEIGHT) * (32 << TILE_HEIGHT)]
    for _ in range(TILE_HEIGHT):
        level = node_level(level)
    return level


#: below this many values a column call costs more than hashlib (and the first one imports polars)
MIN_VALUES = 4096


def leaf_hash_list(entries: list[bytes]) -> list[bytes] | None:
    """Leaf hashes of ``entries`` as a list, or None when hashlib is the better tool (few entries, or
    polars-hash not installed)."""
    if not AVAILABLE or len(entries) < MIN_VALUES:
        return None
    blob = leaf_hashes(pa.array(entries, pa.binary()))
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


def tile_root_list(groups: list[list[bytes]]) -> list[bytes] | None:
    """The roots of full 256-hash groups, or None when hashlib is the better tool."""
    if not AVAILABLE or len(groups) << TILE_HEIGHT < MIN_VALUES:
        return None
    blob = tile_roots(b"".join(b"".join(g) for g in groups))
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]
