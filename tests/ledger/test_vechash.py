"""The verifier's column hashing (polars-hash) gives exactly what hashlib gives: published RFC 9162
vectors, random and edge-case values, sliced and large Arrow arrays."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pytest

from accessproof.ledger import vechash
from accessproof.ledger.merkle import leaf_hashes, pair_level

from .test_ledger_merkle import LEAVES, ROOTS

pytestmark = pytest.mark.skipif(not vechash.AVAILABLE, reason="polars-hash is not installed")


def _random_values(n: int, seed: int = 7) -> list[bytes]:
    rnd = random.Random(seed)
    sizes = [0, 1, 31, 32, 55, 56, 63, 64, 65, 119, 120, 65536]
    return [rnd.randbytes(sizes[i] if i < len(sizes) else rnd.randrange(400)) for i in range(n)]


def test_rfc9162_vectors() -> None:
    leaves = vechash.leaf_hashes(pa.array(LEAVES, pa.binary()))
    assert leaves == b"".join(leaf_hashes(LEAVES))
    # perfect trees of 2, 4 and 8 leaves: one, two and three node levels give the published roots
    assert vechash.node_level(leaves[:64]) == ROOTS[1]
    assert vechash.node_level(vechash.node_level(vechash.node_level(leaves))) == ROOTS[7]
    assert vechash.node_level(vechash.node_level(leaves[:128])) == ROOTS[3]


def test_digests_match_hashlib_on_edge_cases_and_slices() -> None:
    values = _random_values(3000)
    arr = pa.array(values, pa.binary())
    assert vechash.digests(arr) == b"".join(hashlib.sha256(v).digest() for v in values)
    part = arr.slice(1000, 777)  # offset into shared buffers
    assert vechash.digests(part) == b"".join(hashlib.sha256(v).digest() for v in values[1000:1777])
    big = pa.array(values, pa.large_binary())
    assert vechash.digests(big) == vechash.digests(arr)
    hexes = vechash.hex_digests(arr).to_pylist()
    assert hexes == [hashlib.sha256(v).hexdigest() for v in values]
    assert vechash.digests(pa.array([], pa.binary())) == b""


def test_leaves_and_tile_roots_match_the_python_tree() -> None:
    values = _random_values(256 * 3 + 100, seed=11)
    arr = pa.array(values, pa.binary())
    leaves = leaf_hashes(values)
    assert vechash.leaf_hashes(arr) == b"".join(leaves)
    roots = []
    for t in range(3):  # the partial last group of 100 has no root yet
        level = leaves[256 * t : 256 * (t + 1)]
        for _ in range(8):
            level = pair_level(level)
        roots += level
    assert vechash.tile_roots(vechash.leaf_hashes(arr)) == b"".join(roots)
    # one changed byte anywhere changes that leaf and that tile's root only
    values[300] = values[300][:-1] + bytes([values[300][-1] ^ 1])
    changed = vechash.leaf_hashes(pa.array(values, pa.binary()))
    diff = [i for i in range(len(values)) if changed[32 * i : 32 * i + 32] != leaves[i]]
    assert diff == [300]
    new_roots = vechash.tile_roots(changed)
    assert [new_roots[32 * t : 32 * t + 32] != roots[t] for t in range(3)] == [False, True, False]


def test_appending_with_column_hashing_writes_the_same_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends hash leaves and tile roots a column at a time from ``vechash.MIN_VALUES`` entries on: the
    tiles and the root are the ones hashlib gives, whatever the edge they extend."""
    from accessproof.ledger.merkle import root
    from accessproof.ledger.tiles import Edge

    entries = _random_values(5000 + 300, seed=3)[1:]  # no 64 KiB value needed here
    assert vechash.leaf_hash_list(entries) == leaf_hashes(entries)
    assert vechash.leaf_hash_list(entries[:10]) is None  # too few: hashlib does it
    before, batch = entries[:300], entries[300:]
    edge, _ = Edge().extend(leaf_hashes(before))  # a partial tile to extend
    columns = edge.extend(vechash.leaf_hash_list(batch))  # type: ignore[arg-type]
    monkeypatch.setattr(vechash, "AVAILABLE", False)
    plain = edge.extend(leaf_hashes(batch))
    assert columns[1] == plain[1]
    assert columns[0].root() == plain[0].root() == root(leaf_hashes(entries))


def test_salted_payload_digests_match_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sealing's per-record digest SHA-256(salt ‖ payload), as hex: by column from MIN_VALUES records."""
    import os

    from accessproof.ledger.sqlseal import _salted_digests

    payloads = _random_values(vechash.MIN_VALUES + 10, seed=5)
    salts = os.urandom(16 * len(payloads))
    chunked = pa.chunked_array([payloads[:100], payloads[100:]], pa.binary())
    columns = _salted_digests(salts, chunked).to_pylist()
    expected = [hashlib.sha256(salts[16 * i : 16 * i + 16] + p).hexdigest() for i, p in enumerate(payloads)]
    assert columns == expected
    monkeypatch.setattr(vechash, "AVAILABLE", False)
    assert _salted_digests(salts, chunked).to_pylist() == expected
