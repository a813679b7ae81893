"""Populations: per control, every unit its test covers in a period — what an auditor samples from.

A sample proves operating effectiveness only if it is drawn from the *complete* population, so each
control's population is written down as SQL over the store, in ``populations.yaml`` (control id →
``definition``, ``frequency``, ``sql``), never inferred. The query is bound with ``$start`` and ``$end``
(the period, end exclusive) and returns one row per unit:

* ``key`` — a stable name of the unit (the control's own ``resource`` where the two coincide, so a sampled
  item leads straight to the control's result for it);
* ``subject`` — the person (HR id) it is about, else the account or record;
* ``time`` — when it happened (the grant, the decision, the trigger) or, for state at the period's end,
  that end;
* ``summary`` — one line;
* ``raw_ids`` — the ``raw_id`` of every governance and enforcement record that evidences it (each one
  sealed in the ledger at ingest).

``population(store, control_id, start, end)`` runs it and returns a ``Population``; ``payload()`` is what
``accessproof sample`` seals as a ledger entry (see ``audit.sample``). A control whose entry says
``none: <why>`` — or that has no entry at all (a user's own control) — raises ``NoPopulation``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import rfc8785
import yaml

from accessproof.ledger.entry import iso_utc
from accessproof.store.base import Store

FORMAT = "accessproof.population/1"
#: How often a control operates on its units (sample sizes follow it); ``as_occurs``: from the count.
FREQUENCIES = ("many_times_a_day", "daily", "weekly", "monthly", "quarterly", "annual", "as_occurs")
COLUMNS = ("key", "subject", "time", "summary", "raw_ids")
#: linking and identity tables the definitions join (built by ``accessproof link``)
_LINKED = ("accounts", "links", "access_events", "access_intervals", "removal_links", "wf_requests")
#: the shared control views (built by ``accessproof assess``)
_PRELUDE = ("ctl_approvals", "ctl_exceptions", "ctl_suppliers", "ctl_entitlement_policy", "ctl_activity")


class PopulationError(ValueError):
    """A population that cannot be built; the message is one line."""


class NoPopulation(PopulationError):
    """The control has no population to sample; the message says why."""


@dataclass(frozen=True)
class Definition:
    control_id: str
    definition: str
    frequency: str
    sql: str | None = None
    none: str | None = None  # why there is no population (instead of sql)
    params: tuple[tuple[str, str], ...] = ()  # values of the SQL's own $parameters (shared SQL)


@dataclass(frozen=True)
class PopulationItem:
    key: str
    subject: str | None
    time: datetime | None
    summary: str
    raw_ids: list[str] = field(default_factory=list)


@dataclass
class Population:
    control_id: str
    start: datetime
    end: datetime
    definition: str
    frequency: str
    query_sql: str
    items: list[PopulationItem]

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def keys(self) -> list[str]:
        """Item keys in Unicode code point order."""
        return sorted(i.key for i in self.items)

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the RFC 8785 (JCS) JSON array of the sorted keys."""
        return hashlib.sha256(canonical(self.keys)).hexdigest()

    def period(self) -> dict[str, str]:
        return {"from": iso_utc(self.start), "to": iso_utc(self.end)}

    def payload(self) -> dict[str, Any]:
        """What is sealed: control, period, definition, the SQL, count, digest and the sorted keys."""
        return {"format": FORMAT, "control": self.control_id, "period": self.period(),
                "definition": self.definition, "query_sql": self.query_sql, "count": self.count,
                "digest": self.digest, "keys": self.keys}

    def payload_bytes(self) -> bytes:
        """The payload as sealed: RFC 8785 canonical JSON, so anyone can rebuild the bytes from the JSON."""
        return canonical(self.payload())


def canonical(value: Any) -> bytes:
    return rfc8785.dumps(value)


# ---------------------------------------------------------------- definitions

def default_file() -> Path:
    return Path(str(resources.files("accessproof.audit").joinpath("populations.yaml")))


def load_definitions(path: str | Path | None = None) -> dict[str, Definition]:
    """Population definitions by control id (the packaged ``populations.yaml`` unless a path is given)."""
    return dict(_load(str(path)) if path else _packaged())


@cache
def _packaged() -> tuple[tuple[str, Definition], ...]:
    return _load(str(default_file()))


def _load(path: str) -> tuple[tuple[str, Definition], ...]:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise PopulationError(f"{path}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise PopulationError(f"{path}: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise PopulationError(f"{path}: expected a mapping of control id to population")
    out = []
    for cid, spec in doc.items():
        if str(cid).startswith("x-"):  # YAML anchors for shared SQL live under x- keys
            continue
        if not isinstance(spec, dict) or not spec.get("definition") or not (spec.get("sql") or spec.get("none")):
            raise PopulationError(f"{path}: {cid}: needs a definition and either sql or none")
        freq = str(spec.get("frequency") or "as_occurs")
        if freq not in FREQUENCIES:
            raise PopulationError(f"{path}: {cid}: frequency {freq!r} is not one of {', '.join(FREQUENCIES)}")
        params = spec.get("params") or {}
        if not isinstance(params, dict):
            raise PopulationError(f"{path}: {cid}: params must be a mapping")
        out.append((str(cid), Definition(str(cid), " ".join(str(spec["definition"]).split()), freq,
                                         str(spec["sql"]).strip() if spec.get("sql") else None,
                                         " ".join(str(spec["none"]).split()) if spec.get("none") else None,
                                         tuple((str(k), str(v)) for k, v in params.items()))))
    return tuple(out)


def definition_of(control_id: str, definitions: dict[str, Definition] | None = None) -> Definition:
    """The control's population definition; ``NoPopulation`` when it has none (with the reason)."""
    defs = definitions if definitions is not None else load_definitions()
    d = defs.get(control_id)
    if d is None:
        raise NoPopulation(f"no population: {control_id} has no population definition "
                           "(controls of your own need an entry in a populations file)")
    if d.sql is None:
        raise NoPopulation(f"no population: {control_id}: {d.none}")
    return d


# ---------------------------------------------------------------- building

def ensure_tables(store: Store, sql: str) -> None:
    """Build the linking tables or the control views a definition joins, if the store lacks them."""
    from accessproof.linking import sql as S

    if any(t in sql for t in _LINKED) and not all(S.table_exists(store, t) for t in _LINKED):
        from accessproof.controls.prelude import ensure_linked

        ensure_linked(store)
    if any(t in sql for t in _PRELUDE) and not all(S.table_exists(store, t) for t in _PRELUDE):
        from accessproof.controls.prelude import build_prelude, ensure_linked

        ensure_linked(store)
        build_prelude(store)


def population(store: Store, control_id: str, start: datetime, end: datetime, *,
               definitions: dict[str, Definition] | None = None) -> Population:
    """Every unit of ``control_id``'s population with a time in [start, end) (state: at ``end``)."""
    from accessproof.controls.engine import ControlError, bind

    if start.tzinfo is None or end.tzinfo is None:
        raise PopulationError("the period needs times with a timezone")
    if start >= end:
        raise PopulationError(f"empty period: {iso_utc(start)} is not before {iso_utc(end)}")
    d = definition_of(control_id, definitions)
    assert d.sql is not None
    ensure_tables(store, d.sql)
    try:
        sql, params = bind(d.sql, {**dict(d.params), "start": start, "end": end})
    except ControlError as e:
        raise PopulationError(f"population of {control_id}: {e}") from None
    rows = store.query_dicts(sql, params)
    if rows and set(COLUMNS) - set(rows[0]):
        raise PopulationError(f"population of {control_id}: query returns no "
                              f"{', '.join(sorted(set(COLUMNS) - set(rows[0])))} column(s)")
    items = []
    seen: set[str] = set()
    for r in rows:
        key = str(r["key"])
        if key in seen:
            raise PopulationError(f"population of {control_id}: key {key!r} comes twice (the definition must "
                                  "give one row per unit)")
        seen.add(key)
        raw = sorted({str(x) for x in (r["raw_ids"] or []) if x is not None})
        items.append(PopulationItem(key, None if r["subject"] is None else str(r["subject"]), r["time"],
                                    str(r["summary"] or ""), raw))
    items.sort(key=lambda i: i.key)
    return Population(control_id, start, end, d.definition, d.frequency, d.sql, items)


__all__ = ["FORMAT", "FREQUENCIES", "Definition", "NoPopulation", "Population", "PopulationError",
           "PopulationItem", "canonical", "definition_of", "load_definitions", "population"]
