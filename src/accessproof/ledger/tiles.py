"""Hash tiles in the spirit of C2SP tlog-tiles.

A tile at level L holds up to 256 consecutive hashes of tree height 8·L (level 0: leaf hashes). Full
tiles never change; the one partial tile per level is rewritten as the log grows. Any node of height
8·L + r is the MTH of 2^r consecutive hashes of one level-L tile, so an inclusion proof at 10M entries
reads about two tiles per level (three levels) instead of rebuilding the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from accessproof.ledger import vechash
from accessproof.ledger.merkle import EMPTY_ROOT, HASH_SIZE, node_hash, pair_level, subtree_from_nodes

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT

#: read_tile(level, index) -> concatenated hashes of the widest stored version, or None
TileGetter = Callable[[int, int], bytes | None]
#: read_tile_set([(level, index)…]) -> {(level, index): hashes} for those that exist
TileSetGetter = Callable[[list[tuple[int, int]]], dict[tuple[int, int], bytes]]


class TileError(LookupError):
    """A tile the tree needs is missing or too narrow (a damaged or tampered store)."""


def split_hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


def level_width(size: int, level: int) -> int:
    """How many complete hashes level ``level`` holds in a tree of ``size`` leaves."""
    return size >> (TILE_HEIGHT * level)


def tile_width(size: int, level: int, index: int) -> int:
    """Width of tile (level, index) in a tree of ``size`` leaves (0 if it does not exist)."""
    return max(0, min(TILE_WIDTH, level_width(size, level) - index * TILE_WIDTH))


def tile_keys(size: int) -> list[tuple[int, int, int]]:
    """Every (level, index, width) that a tree of ``size`` leaves stores."""
    keys = []
    level = 0
    while (count := level_width(size, level)) > 0:
        for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            keys.append((level, index, tile_width(size, level, index)))
        level += 1
    return keys


def tile_root(hashes: list[bytes]) -> bytes:
    """Hash of a full tile: the node of height 8·(L+1) it covers."""
    while len(hashes) > 1:
        hashes = pair_level(hashes)
    return hashes[0]


@dataclass
class _Tile:
    levels: list[list[bytes]]  # levels[r]: complete nodes of height 8L + r inside the tile

    def node(self, r: int, offset: int) -> bytes:
        while len(self.levels) <= r:
            self.levels.append(pair_level(self.levels[-1]))
        return self.levels[r][offset]


@dataclass
class TileReader:
    """Nodes and subtree hashes of a tree of ``size`` leaves, read lazily from tiles.

    Full tiles are cached (they never change); partial ones are read per reader, so build a new reader
    after an append.
    """

    get_tile: TileGetter
    size: int
    full_cache: dict[tuple[int, int], _Tile] | None = None
    _partial: dict[tuple[int, int], _Tile] = field(default_factory=dict)

    def _tile(self, level: int, index: int) -> _Tile:
        key = (level, index)
        need = tile_width(self.size, level, index)
        cache = self.full_cache if need == TILE_WIDTH and self.full_cache is not None else self._partial
        tile = cache.get(key)
        if tile is None:
            blob = self.get_tile(level, index)
            if blob is None or len(blob) < need * HASH_SIZE or len(blob) % HASH_SIZE:
                raise TileError(f"tile {level}/{index} is missing or too short for tree size {self.size}")
            tile = _Tile([split_hashes(blob[: need * HASH_SIZE])])
            cache[key] = tile
        return tile

    def prefetch(self, ranges: list[tuple[int, int]], get_many: TileSetGetter) -> None:
        """Load every tile the subtrees ``ranges`` need with one ``get_many`` call."""
        keys: set[tuple[int, int]] = set()

        def record(height: int, index: int) -> bytes:
            level, r = divmod(height, TILE_HEIGHT)
            keys.add((level, (index << r) // TILE_WIDTH))
            return bytes(HASH_SIZE)

        for start, end in ranges:
            subtree_from_nodes(start, end, record)
        missing = [
            k
            for k in keys
            if k not in self._partial and (self.full_cache is None or k not in self.full_cache)
        ]
        if not missing:
            return
        for (level, index), blob in get_many(missing).items():
            need = tile_width(self.size, level, index)
            if need and len(blob) >= need * HASH_SIZE and not len(blob) % HASH_SIZE:
                full = need == TILE_WIDTH and self.full_cache is not None
                cache = self.full_cache if full else self._partial
                cache[(level, index)] = _Tile([split_hashes(blob[: need * HASH_SIZE])])  # type: ignore[index]

    def node(self, height: int, index: int) -> bytes:
        level, r = divmod(height, TILE_HEIGHT)
        first = index << r  # first level-L hash covered
        if (first + (1 << r)) > level_width(self.size, level):
            raise TileError(f"node {height}/{index} is not complete at tree size {self.size}")
        tile = self._tile(level, first // TILE_WIDTH)
        return tile.node(r, (first % TILE_WIDTH) >> r)

    def subtree(self, start: int, end: int) -> bytes:
        if not 0 <= start < end <= self.size:
            raise TileError(f"range [{start}, {end}) is outside tree size {self.size}")
        return subtree_from_nodes(start, end, self.node)

    def root(self) -> bytes:
        return EMPTY_ROOT if self.size == 0 else self.subtree(0, self.size)

    def leaf(self, index: int) -> bytes:
        return self.node(0, index)


@dataclass
class Edge:
    """The right edge of the tree: the partial tile of every level, enough to append and to get the root."""

    size: int = 0
    partial: list[list[bytes]] = field(default_factory=list)  # partial[L]: hashes of the last, partial tile

    @classmethod
    def load(cls, size: int, get_tile: TileGetter) -> Edge:
        edge = cls(size=size)
        level = 0
        while level_width(size, level) > 0:
            width = level_width(size, level) % TILE_WIDTH
            hashes: list[bytes] = []
            if width:
                blob = get_tile(level, level_width(size, level) // TILE_WIDTH)
                if blob is None or len(blob) < width * HASH_SIZE:
                    raise TileError(f"partial tile at level {level} is missing for tree size {size}")
                hashes = split_hashes(blob[: width * HASH_SIZE])
            edge.partial.append(hashes)
            level += 1
        return edge

    def extend(self, hashes: list[bytes]) -> tuple[Edge, list[tuple[int, int, bytes]]]:
        """A new edge with ``hashes`` appended as leaves, and the tiles (level, index, data) to write."""
        new = Edge(size=self.size + len(hashes), partial=[list(p) for p in self.partial])
        writes: list[tuple[int, int, bytes]] = []
        level, incoming, before = 0, hashes, self.size
        while incoming:
            if len(new.partial) <= level:
                new.partial.append([])
            count_before = level_width(before, level)
            buf = new.partial[level] + incoming
            tile_index = count_before // TILE_WIDTH
            fulls: list[list[bytes]] = []
            pos = 0
            while len(buf) - pos >= TILE_WIDTH:
                full = buf[pos : pos + TILE_WIDTH]
                writes.append((level, tile_index, b"".join(full)))
                fulls.append(full)
                tile_index += 1
                pos += TILE_WIDTH
            promoted = vechash.tile_root_list(fulls) or [tile_root(full) for full in fulls]
            rest = buf[pos:]
            if rest:  # it changed: new hashes arrived at this level
                writes.append((level, tile_index, b"".join(rest)))
            new.partial[level] = rest
            incoming = promoted
            level += 1
        return new, writes

    def root(self) -> bytes:
        """MTH of the whole tree from the partial tiles alone (every right-edge peak lives in one)."""
        if self.size == 0:
            return EMPTY_ROOT
        peaks: list[bytes] = []  # right to left
        for level in range(len(self.partial)):
            hashes = self.partial[level]
            # peaks inside this partial tile: one per set bit of its width, from the right end
            width = len(hashes)
            end = width
            for r in range(TILE_HEIGHT):
                if width & (1 << r):
                    peaks.append(tile_root(hashes[end - (1 << r) : end]))
                    end -= 1 << r
        acc = peaks[0]
        for peak in peaks[1:]:
            acc = node_hash(peak, acc)
        return acc
