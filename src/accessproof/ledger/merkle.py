"""RFC 9162 (C2SP tlog) Merkle tree hashing, inclusion and consistency proofs.

Pure functions, no storage: proof *generation* takes a ``subtree(start, end)`` callback so the same code
serves an in-memory list of leaf hashes (tests) and the tiled store (O(log n) tile reads at 10M entries).
Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, so a third party can audit it line
against the RFC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from itertools import pairwise

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: subtree(start, end) -> MTH of leaves [start, end)
SubtreeFn = Callable[[int, int], bytes]

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof cannot be produced (bad sizes) or does not verify."""


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry): the leaf prefix keeps a leaf from posing as an interior node."""
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def leaf_hashes(entries: Sequence[bytes]) -> list[bytes]:
    """Leaf hashes of many entries (the hot loop of appends and verification).

    Copying a pre-fed hash object beats concatenating the prefix: no per-entry buffer copy.
    """
    copy = _sha256(LEAF_PREFIX).copy
    out: list[bytes] = []
    append = out.append
    for e in entries:
        h = copy()
        h.update(e)
        append(h.digest())
    return out


def leaf_hashes_at(buffer: bytes | memoryview, offsets: Sequence[int]) -> list[bytes]:
    """Leaf hashes of the entries ``buffer[offsets[i]:offsets[i + 1]]`` (one packed buffer, e.g. an Arrow
    binary column's data: no bytes object per entry)."""
    view = memoryview(buffer)
    copy = _sha256(LEAF_PREFIX).copy
    out: list[bytes] = []
    append = out.append
    for a, b in pairwise(offsets):
        h = copy()
        h.update(view[a:b])
        append(h.digest())
    return out


def pair_level(hashes: Sequence[bytes]) -> list[bytes]:
    """Hash adjacent pairs (an odd last hash is dropped: it is not a complete node yet)."""
    copy = _sha256(NODE_PREFIX).copy
    out: list[bytes] = []
    append = out.append
    it = iter(hashes[: len(hashes) & ~1])
    for left, right in zip(it, it, strict=True):
        h = copy()
        h.update(left)
        h.update(right)
        append(h.digest())
    return out


def largest_pow2_below(n: int) -> int:
    """The RFC split point k: the largest power of two strictly smaller than n (n > 1)."""
    if n < 2:
        raise ValueError("n must be > 1")
    return 1 << ((n - 1).bit_length() - 1)


def is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def root(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes (RFC 9162 §2.1.1), computed bottom-up without recursion."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    # Perfect subtrees from the left, one per set bit of n, largest first; then fold right to left.
    peaks: list[bytes] = []
    start = 0
    for bit in range(n.bit_length() - 1, -1, -1):
        width = 1 << bit
        if n & width:
            level = list(hashes[start : start + width])
            while len(level) > 1:
                level = pair_level(level)
            peaks.append(level[0])
            start += width
    acc = peaks[-1]
    for peak in reversed(peaks[:-1]):
        acc = node_hash(peak, acc)
    return acc


def subtree_from_nodes(start: int, end: int, node: Callable[[int, int], bytes]) -> bytes:
    """MTH of [start, end) given ``node(height, index)`` for perfect aligned subtrees."""
    n = end - start
    if n <= 0:
        raise ProofError(f"empty range [{start}, {end})")
    if is_pow2(n) and start % n == 0:
        h = n.bit_length() - 1
        return node(h, start >> h)
    k = largest_pow2_below(n)
    return node_hash(subtree_from_nodes(start, start + k, node), subtree_from_nodes(start + k, end, node))


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make up PATH(index, D[size]), in proof order."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + largest_pow2_below(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    return ranges[::-1]


def inclusion_proof(index: int, size: int, subtree: SubtreeFn) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1, siblings listed from the leaf upwards."""
    return [subtree(a, b) for a, b in inclusion_ranges(index, size)]


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make up PROOF(old_size, D[new_size]), in proof order."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"cannot prove size {old_size} against size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, whole = 0, new_size, old_size, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                ranges.append((start, end))
            break
        k = largest_pow2_below(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    return ranges[::-1]


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeFn) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 §2.1.4.1."""
    return [subtree(a, b) for a, b in consistency_ranges(old_size, new_size)]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-4: the root a proof leads to (raises if the shape is wrong)."""
    if index >= size or index < 0:
        raise ProofError(f"index {index} is beyond tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash has the wrong length")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE:
            raise ProofError("proof hash has the wrong length")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Raise ProofError unless ``proof`` shows leaf ``index`` in the tree of ``size`` with ``root_hash``."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root_hash:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2; raise ProofError unless the tree of ``old_size`` is a prefix of ``new_size``."""
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"size {new_size} cannot extend size {old_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("roots differ at the same tree size")
        return
    if old_size == 0:
        if proof:
            raise ProofError("consistency proof from an empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("proof hash has the wrong length")
    path = list(proof)
    if is_pow2(old_size):
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


class MemoryTree:
    """A tree over in-memory leaf hashes: reference implementation for tests and small logs."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(hashes)]
        while len(self.levels[-1]) > 1:
            self.levels.append(pair_level(self.levels[-1]))

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def node(self, height: int, index: int) -> bytes:
        return self.levels[height][index]

    def subtree(self, start: int, end: int) -> bytes:
        return subtree_from_nodes(start, end, self.node)

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.subtree)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(old_size, self.size if new_size is None else new_size, self.subtree)
