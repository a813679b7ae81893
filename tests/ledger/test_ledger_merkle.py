"""RFC 6962/9162 Merkle tree: published reference vectors and agreement with a naive recursive MTH.

Vectors: the 8 reference leaves with roots and proofs as published in transparency-dev/merkle
(proof/verify_test.go, rfc6962/rfc6962_test.go), the same data certificate-transparency-go uses.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from accessproof.ledger.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    leaf_hash,
    leaf_hashes,
    node_hash,
    root,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (leaf index, tree size, path) — the Go table lists leaves 1-based; converted here to 0-based.
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]
TREE = MemoryTree(leaf_hashes(LEAVES))


def naive_mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 read literally (recursion with the largest power of two below n)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node_hash(naive_mth(hashes[:k]), naive_mth(hashes[k:]))


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert leaf_hash(b"L123456").hex() == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    hashes = leaf_hashes(LEAVES[:size])
    assert root(hashes) == ROOTS[size - 1]
    assert TREE.root(size) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_reference_inclusion(index: int, size: int, path: list[bytes]) -> None:
    assert TREE.inclusion_proof(index, size) == path
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), path, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_reference_consistency(old: int, new: int, path: list[bytes]) -> None:
    assert TREE.consistency_proof(old, new) == path
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], path)


def _inclusion_probes(index: int, size: int, path: list[bytes], rt: bytes, leaf: bytes):
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    yield index + 1, size, path, rt, leaf
    if index > 0:
        yield index - 1, size, path, rt, leaf
    yield index ^ 2, size, path, rt, leaf
    yield index, size * 2, path, rt, leaf
    if size > 1:
        yield index, size // 2, path, rt, leaf
    yield index, size, path, rt, leaf_hash(b"WrongLeaf")
    yield index, size, path, EMPTY_ROOT, leaf
    yield index, size, path, some, leaf
    yield index, size, [*path, rt], rt, leaf
    yield index, size, [rt, *path], rt, leaf
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield index, size, bad, rt, leaf
    if path:
        yield index, size, path[:-1], rt, leaf


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION[1:])
def test_inclusion_rejects_corruption(index: int, size: int, path: list[bytes]) -> None:
    for probe in _inclusion_probes(index, size, path, ROOTS[size - 1], leaf_hash(LEAVES[index])):
        if probe == (index, size, path, ROOTS[size - 1], leaf_hash(LEAVES[index])):
            continue
        with pytest.raises(ProofError):
            verify_inclusion(probe[0], probe[1], probe[4], probe[2], probe[3])


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY[1:])
def test_consistency_rejects_corruption(old: int, new: int, path: list[bytes]) -> None:
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    probes = [
        (old - 1, new, r1, r2, path),
        (old + 1, new, r1, r2, path),
        (old ^ 2, new, r1, r2, path),
        (old, new * 2, r1, r2, path),
        (old, new // 2, r1, r2, path),
        (old, new, leaf_hash(b"x"), r2, path),
        (old, new, r1, leaf_hash(b"x"), path),
        (old, new, r2, r1, path),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*path, r1]),
        (old, new, r1, r2, [r2, *path]),
        (old, new, r1, r2, [path[0], *path]),
        (old, new, r1, r2, path[:-1]),
    ]
    for i in range(len(path)):
        bad = list(path)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((old, new, r1, r2, bad))
    for o, n, a, b, p in probes:
        if (o, n, a, b, p) == (old, new, r1, r2, path):
            continue
        with pytest.raises(ProofError):
            verify_consistency(o, n, a, b, p)


def test_edge_cases() -> None:
    with pytest.raises(ProofError):
        root_from_inclusion_proof(0, 0, leaf_hash(b""), [])
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[4], [])
    verify_consistency(3, 3, ROOTS[2], ROOTS[2], [])
    with pytest.raises(ProofError):
        verify_consistency(3, 3, ROOTS[2], ROOTS[3], [])
    with pytest.raises(ProofError):
        verify_consistency(4, 3, ROOTS[3], ROOTS[2], [])
    with pytest.raises(ProofError):
        TREE.inclusion_proof(8, 8)


def test_random_trees_agree_with_naive_recursion() -> None:
    rnd = random.Random(7)
    for n in [*range(1, 70), 255, 256, 257, 511, 1000]:
        hashes = [leaf_hash(rnd.randbytes(rnd.randint(0, 40))) for _ in range(n)]
        tree = MemoryTree(hashes)
        assert tree.root() == naive_mth(hashes) == root(hashes)
        for _ in range(8):
            i = rnd.randrange(n)
            s = rnd.randint(i + 1, n)
            verify_inclusion(i, s, hashes[i], tree.inclusion_proof(i, s), naive_mth(hashes[:s]))
            o = rnd.randint(1, n)
            verify_consistency(o, n, naive_mth(hashes[:o]), tree.root(), tree.consistency_proof(o))
