"""Reproducible audit samples: freeze a control's population in the ledger, then draw from it by a seed.

``take_sample(store, control_id, start, end, size=None, seed=None)``:

1. builds the control's population for the period (``audit.population``);
2. freezes it as a ledger entry of type ``population`` whose payload — control, period, definition, SQL,
   count, digest and the sorted keys, as RFC 8785 JSON — is kept in ``ledger_payloads`` in the same
   transaction, so ``accessproof verify`` rehashes it (the same population frozen again reuses its entry);
   a checkpoint is signed when the store has a key;
3. draws the sample: every key is ranked by SHA-256 of ``"<seed>:<key>"`` and the ``size`` lowest ranks
   are taken (``ALGORITHM`` says it in words an auditor can redo with ``sha256sum``). Ranking by hash
   makes the draw independent of row order, and adding or removing one item never reshuffles the rest;
4. sizes it by the control's operating frequency (``SIZE_BANDS``, common guidance for tests of controls),
   at the low end of the range for low-risk controls and higher with severity, and writes why.

``Sample.document()`` is the sample file other commands read (format ``accessproof.sample/1``, see the
shared contract): ``accessproof package --sample FILE`` builds an audit package from it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from accessproof.audit.population import (
    Definition,
    Population,
    PopulationError,
    PopulationItem,
    population,
)
from accessproof.ledger import open_ledger
from accessproof.ledger.entry import decode_entry, iso_utc, payload_matches
from accessproof.store.base import Store

FORMAT = "accessproof.sample/1"
SOURCE = "accessproof:audit"
ALGORITHM = (
    "sha256-rank/1: for every population key, rank = SHA-256 of the UTF-8 bytes of the seed in decimal, "
    "a colon and the key (e.g. printf '%s' '7:event:okta:acme:abc' | sha256sum), as lowercase hex; "
    "sort by rank (then key) and take the first <size>; items are listed in that order"
)
#: (low, high) sample sizes for tests of controls by how often the control operates (common audit guidance)
SIZE_BANDS: dict[str, tuple[int, int]] = {
    "annual": (1, 1), "quarterly": (2, 2), "monthly": (2, 5), "weekly": (5, 15), "daily": (25, 40),
    "many_times_a_day": (25, 60),
}
#: where in the band by the control's severity: low end, middle, high end
_SEVERITY_POINT = {"info": 0.0, "low": 0.0, "medium": 0.0, "high": 0.5, "critical": 1.0}
#: occurrences a year up to which a control operating "as events occur" falls in each band
_OCCURRENCE_BANDS = ((1, "annual"), (4, "quarterly"), (12, "monthly"), (52, "weekly"), (365, "daily"))


@dataclass
class Sample:
    control_id: str
    title: str
    control_frequency: str
    population: Population
    ledger_index: int
    record_id: str
    seed: int
    size: int
    guidance: str
    items: list[PopulationItem]
    sealed_now: bool = True  # False: the same population was frozen before and its entry is reused

    def document(self) -> dict[str, Any]:
        """The sample file (``accessproof.sample/1``)."""
        pop = self.population
        return {
            "format": FORMAT,
            "control": {"id": self.control_id, "title": self.title, "frequency": self.control_frequency},
            "period": pop.period(),
            "population": {"definition": pop.definition, "query_sql": pop.query_sql, "count": pop.count,
                           "digest": pop.digest, "ledger_index": self.ledger_index, "payload": pop.payload()},
            "method": {"seed": self.seed, "size": self.size, "algorithm": ALGORITHM, "guidance": self.guidance},
            "items": [{"key": i.key, "subject": i.subject, "time": iso_utc(i.time) if i.time else None,
                       "summary": i.summary, "raw_ids": i.raw_ids} for i in self.items],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.document(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


# ---------------------------------------------------------------- periods

def parse_when(text: str, what: str = "time") -> datetime:
    """An ISO 8601 date or time; UTC when it names no offset."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PopulationError(f"{what} {text.strip()[:40]!r} is not a date or time (ISO 8601, e.g. 2026-01-01 or "
                              "2026-01-01T08:00:00Z)") from None
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).astimezone(UTC)


def parse_period(text: str) -> tuple[datetime, datetime]:
    """``FROM..TO`` (dates or times, UTC unless they say otherwise; TO is exclusive)."""
    start, sep, end = (text or "").partition("..")
    if not sep or not start.strip() or not end.strip():
        raise PopulationError(f"period {text!r} is not FROM..TO (e.g. 2026-01-01..2026-07-01, TO exclusive)")
    a, b = parse_when(start, "period start"), parse_when(end, "period end")
    if a >= b:
        raise PopulationError(f"period {text!r} is empty: its start is not before its end")
    return a, b


# ---------------------------------------------------------------- drawing

def rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def draw(items: list[PopulationItem], seed: int, size: int) -> list[PopulationItem]:
    """The ``size`` items with the lowest SHA-256 rank under ``seed`` (all of them if there are fewer)."""
    return sorted(items, key=lambda i: (rank(seed, i.key), i.key))[:size]


def band_of(frequency: str, count: int, start: datetime, end: datetime) -> tuple[str, str]:
    """(band, why): the frequency itself, or for ``as_occurs`` the band of the count per year."""
    if frequency != "as_occurs":
        return frequency, f"the control operates {frequency.replace('_', ' ')}"
    days = (end - start).total_seconds() / 86400
    per_year = count * 365.25 / days
    band = next((b for limit, b in _OCCURRENCE_BANDS if round(per_year) <= limit), "many_times_a_day")
    return band, (f"the control operates as events occur: {count} in {days:g} days, about {per_year:.0f} a year, "
                  f"so {band.replace('_', ' ')}")


def default_size(frequency: str, severity: str, count: int, start: datetime, end: datetime) -> tuple[int, str]:
    """(size, guidance) from the control's operating frequency and severity, capped at the population."""
    band, why = band_of(frequency, count, start, end)
    low, high = SIZE_BANDS[band]
    point = _SEVERITY_POINT.get(severity, 0.0)
    size = low + round((high - low) * point + 1e-9)
    where = {0.0: "the low end", 0.5: "the middle", 1.0: "the high end"}[point]
    table = ", ".join(f"{b.replace('_', ' ')} {lo}" + (f"–{hi}" if hi != lo else "") for b, (lo, hi) in SIZE_BANDS.items())
    text = (f"{why}. Common guidance for tests of controls by frequency: {table}. Severity {severity}: "
            f"{where} of {low}" + (f"–{high}" if high != low else "") + f", {size}.")
    return size, text


# ---------------------------------------------------------------- freezing

def freeze(store: Store, pop: Population, *, retention: str | None = None) -> tuple[int, str, bool]:
    """Seal the population as a ``population`` ledger entry with its payload kept for ``verify``; returns
    (ledger index, record id, sealed now). A population frozen before (same payload) keeps its entry."""
    data = pop.payload_bytes()
    record_id = f"{pop.control_id}:{pop.period()['from']}..{pop.period()['to']}:{hashlib.sha256(data).hexdigest()[:16]}"
    ledger = open_ledger(store.dir, getattr(store, "con", None))
    try:
        for idx in ledger.find(record_id, "population"):
            kept = ledger.storage.get_payloads("population", [record_id]).get(record_id)
            if kept is None or bytes(kept) != data or not payload_matches(decode_entry(ledger.entry(idx)), data):
                raise PopulationError(f"population entry {record_id} (ledger index {idx}) no longer matches its "
                                      "payload; run 'accessproof verify'")
            return idx, record_id, False
        cls = retention if ledger.policy is not None and retention in ledger.policy.classes else None
        with ledger.storage.transaction():
            ledger.storage.put_payloads([("population", record_id, data)])
            idx = ledger.seal_columns(["population"], [record_id], [SOURCE], [datetime.now(UTC)],
                                      [data], kinds=[pop.control_id], retentions=[cls])
        if ledger.signer is not None:
            ledger.checkpoint()
        return idx, record_id, True
    finally:
        ledger.close()


# ---------------------------------------------------------------- the whole step

def take_sample(store: Store, control_id: str, start: datetime, end: datetime, *, size: int | None = None,
                seed: int | None = None, definitions: dict[str, Definition] | None = None,
                catalogue: dict[str, Any] | None = None) -> Sample:
    """Build, freeze and sample ``control_id``'s population for [start, end)."""
    from accessproof.controls.engine import load_catalogue

    controls = catalogue if catalogue is not None else load_catalogue()
    control = controls.get(control_id)
    if control is None:
        raise PopulationError(f"unknown control {control_id!r} (see 'accessproof controls list')")
    if size is not None and size < 1:
        raise PopulationError(f"sample size must be at least 1 (got {size})")
    from accessproof.linking.sql import table_exists

    if not table_exists(store, "ledger_entries") or not store.query(
            "SELECT count(*) FROM ledger_entries WHERE record_type = 'raw'")[0][0]:
        raise PopulationError("this store has no sealed records (run 'accessproof init' before ingesting): a "
                              "population frozen now would prove nothing about them")
    pop = population(store, control_id, start, end, definitions=definitions)
    if not pop.items:
        raise PopulationError(f"the population of {control_id} in {pop.period()['from']}..{pop.period()['to']} "
                              "is empty: nothing to sample")
    suggested, guidance = default_size(pop.frequency, control.severity, pop.count, start, end)
    if size is not None:
        guidance = f"Size {size} set by the auditor; the default would be {suggested}: {guidance}"
    wanted = size if size is not None else suggested
    if wanted >= pop.count:
        guidance += f" The population ({pop.count}) is no larger than that: every item is taken."
    seed = secrets.randbelow(1_000_000) if seed is None else int(seed)
    index, record_id, sealed_now = freeze(store, pop, retention=control.retention_class)
    items = draw(pop.items, seed, wanted)
    return Sample(control_id, control.title, control.frequency, pop, index, record_id, seed, len(items), guidance,
                  items, sealed_now)


__all__ = ["ALGORITHM", "FORMAT", "SIZE_BANDS", "Sample", "band_of", "default_size", "draw", "freeze",
           "parse_period", "parse_when", "rank", "take_sample"]
