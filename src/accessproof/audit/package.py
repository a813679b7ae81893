"""Audit packages: a self-contained zip an auditor can check without trusting accessproof.

``build_package(store, out, control=… | sample=… | person=…)`` gathers the items in scope (the findings
of a control's latest run, the items of a sample file — see ``SAMPLE_FORMAT`` — or a person's lifecycle),
follows each item's chain through linking (``workpaper.item_chain``) and writes, for every raw record
the chains rest on, the bytes exactly as ingested, the normalised rows derived from them and an RFC 9162
inclusion proof of its ledger entry. All proofs are against ONE signed checkpoint (the latest, or a fresh
one when the latest does not cover every entry), whose note is included; with ``since_checkpoint`` (a
checkpoint the auditor already holds) a consistency proof to it. Also inside: the verifier key, the
control definitions with their latest sealed run and result rows, findings, the population and sampling
method, formula-safe CSV and XLSX, the HTML workpaper, ``VERIFY.md`` and the standalone verifier as
``verify.py``. ``manifest.json`` lists every file with SHA-256 and size; ``manifest.sig`` is a C2SP signed
note over the manifest's hash, by the ledger key. ``verify_package`` (stdlib + cryptography only) checks it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import rfc8785

from accessproof import __version__
from accessproof.audit import verify_package as V
from accessproof.audit import workpaper as W
from accessproof.controls import findings as F
from accessproof.controls.engine import ControlError, load_catalogue
from accessproof.ledger import Ledger, LedgerError, decode_entry, open_ledger
from accessproof.ledger.entry import EntryError, payload_matches
from accessproof.ledger.merkle import ProofError, inclusion_ranges, verify_consistency, verify_inclusion
from accessproof.ledger.merkle import leaf_hash as ledger_leaf_hash
from accessproof.linking import sql as S
from accessproof.output import to_csv
from accessproof.store.base import Store

SAMPLE_FORMAT = "accessproof.sample/1"
ITEM_COLUMNS = ("n", "key", "subject", "display_name", "time", "summary", "request", "approval", "trigger",
                "execution", "removal", "evidence_records")
FINDING_COLUMNS = ("finding_id", "control_id", "state", "severity", "resource", "person_id", "system",
                   "account_id", "entitlement", "first_seen", "last_seen", "exception_id", "reason", "evidence_ids")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RAW_EXT = {"csv": "csv", "okta": "json", "entra": "json", "github": "json", "servicenow": "json", "jira": "json",
            "cloudtrail": "json", "json": "json"}


class PackageError(ValueError):
    """A package that cannot be built; the message is one line a person can act on."""


@dataclass
class Item:
    """One unit of the package: what was sampled (or found), and the raw records that evidence it."""

    key: str
    subject: str | None
    time: str | None
    summary: str
    raw_ids: list[str]


@dataclass
class PackageResult:
    path: Path
    items: int
    evidence: int
    proofs: int
    tree_size: int
    files: int
    bytes: int
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- scope: what goes in


def load_sample(path: str | Path) -> tuple[dict[str, Any], bytes]:
    """A sample file (``accessproof sample --out``) and its bytes; PackageError when it is not one."""
    try:
        data = Path(path).read_bytes()
        sample = orjson.loads(data)
    except OSError as exc:
        raise PackageError(f"cannot read sample file {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise PackageError(f"sample file {path} is not JSON ({exc})") from None
    if not isinstance(sample, dict) or sample.get("format") != SAMPLE_FORMAT:
        raise PackageError(f"{path} is not a sample file (format {SAMPLE_FORMAT})")
    pop, items = sample.get("population"), sample.get("items")
    if not isinstance(pop, dict) or not isinstance(pop.get("ledger_index"), int) or not isinstance(items, list):
        raise PackageError(f"{path}: a sample needs population.ledger_index and a list of items")
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not isinstance(it.get("key"), str) or not isinstance(it.get("raw_ids"), list):
            raise PackageError(f"{path}: item {i} needs a key and a list of raw_ids")
    return sample, data


def _sample_items(sample: dict[str, Any]) -> list[Item]:
    return [Item(str(it["key"]), it.get("subject"), it.get("time"), str(it.get("summary") or ""),
                 [str(r) for r in it["raw_ids"]]) for it in sample["items"]]


def resolve_evidence_ids(store: Store, ids: list[str]) -> list[str]:
    """Raw ids behind evidence ids (raw ids, event ids, governance record ids), as controls report them."""
    if not ids:
        return []
    rows = store.query("""
        SELECT raw_id FROM raw_records WHERE raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))
        UNION SELECT raw_id FROM events WHERE event_id IN (SELECT unnest(CAST(? AS VARCHAR[])))
        UNION SELECT raw_id FROM workflow_records WHERE record_id IN (SELECT unnest(CAST(? AS VARCHAR[])))""", [ids, ids, ids])
    return sorted(r[0] for r in rows)


def _latest_run(store: Store, control_id: str) -> dict[str, Any] | None:
    return next((r for r in F.latest_runs(store) if r["control_id"] == control_id), None)


def _control_items(store: Store, control_id: str) -> list[Item]:
    run = _latest_run(store, control_id)
    if run is None:
        raise PackageError(f"control {control_id} has no completed run in this store (run `accessproof assess`)")
    items = []
    for r in F.run_results(store, run["run_id"], status="alarm"):
        items.append(Item(r["finding_id"], r.get("person_id") or r.get("account_id"), None,
                          str(r.get("reason") or ""), resolve_evidence_ids(store, [str(x) for x in r["evidence_ids"]])))
    return items


def person_id_of(store: Store, person: str) -> str:
    rows = store.query("SELECT person_id FROM persons_current WHERE person_id = ? OR lower(email) = lower(?)",
                       [person, person]) if S.table_exists(store, "persons_current") else []
    if rows:
        return str(rows[0][0])
    from accessproof.identity.resolve import person_of

    found = person_of(store, person)
    if not found:
        raise PackageError(f"no single person matches {person!r} (try a person id or work email)")
    return str(found["person_id"])


def _person_items(store: Store, pid: str) -> list[Item]:
    """The person's worker record, each HR event, each access they held and each governance record about them."""
    if not S.table_exists(store, "access_intervals"):
        raise PackageError("the store is not linked yet (run `accessproof link run`)")
    items: list[Item] = []
    workers = [r[0] for r in store.query("SELECT raw_id FROM persons WHERE person_id = ? ORDER BY raw_id", [pid])]
    items.append(Item(f"person:{pid}", pid, None, "worker record(s) from HR", workers))
    covered: set[str] = set()
    for r in store.query_dicts("""
        SELECT * FROM access_intervals WHERE person_id = ? AND coalesce(grant_raw_id, removal_raw_id) IS NOT NULL
        ORDER BY coalesce(granted_at, removed_at), system, account_id, entitlement_key""", [pid]):
        raws = [x for x in (r["grant_raw_id"], r["removal_raw_id"]) if x]
        held = f"{W.iso(r['granted_at']) or 'before the data'} to {W.iso(r['removed_at']) or 'still held'}"
        items.append(Item(f"access:{r['system']}:{r['account_id']}:{r['entitlement_key']}:{W.iso(r['granted_at'])}",
                          pid, W.iso(r["granted_at"] or r["removed_at"]),
                          f"{r['entitlement_type']} {r['entitlement']} in {r['system']}, {held}", raws))
        covered |= {x["record_raw_id"] for x in _links_of(store, raws)}
    for r in store.query_dicts("""
        SELECT w.record_id, w.raw_id, w.kind, w.scope, w.event_type, coalesce(w.effective, w.opened) AS t
        FROM wf_current w JOIN workflow_subjects s ON s.raw_id = w.raw_id
        WHERE s.person_id = ? AND w.kind NOT IN ('approval', 'training_attestation') ORDER BY t, w.record_id""", [pid]):
        if r["raw_id"] in covered:
            continue
        what = f"HR {r['event_type']}" if r["kind"] == "hr_event" else f"{r['kind'].replace('_', ' ')}: {r['scope']}"
        items.append(Item(f"record:{r['record_id']}", pid, W.iso(r["t"]), what, [r["raw_id"]]))
    return items


def _links_of(store: Store, event_raw_ids: list[str]) -> list[dict[str, Any]]:
    return store.query_dicts("SELECT record_raw_id FROM links WHERE event_raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))",
                             [event_raw_ids]) if event_raw_ids and S.table_exists(store, "links") else []


# ---------------------------------------------------------------- the zip's contents


class _Files:
    """The files of the package in memory, by path; the manifest is made from them."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def add(self, path: str, data: bytes | str) -> str:
        if path in self.data:
            raise PackageError(f"internal: {path} written twice")
        self.data[path] = data.encode("utf-8") if isinstance(data, str) else data
        return path

    def json(self, path: str, value: Any) -> str:
        return self.add(path, orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))


def _safe(name: str) -> str:
    return name if _SAFE_NAME.match(name) else hashlib.sha256(name.encode()).hexdigest()[:32]


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _entries(store: Store, record_type: str, record_ids: list[str]) -> dict[str, tuple[int, bytes]]:
    """(ledger index, entry bytes) of each record, confirmed against the entry bytes (the lookup columns
    are not trusted)."""
    if not record_ids:
        return {}
    rows = store.query("SELECT idx, entry FROM ledger_entries WHERE record_type = ? AND record_id IN "
                       "(SELECT unnest(CAST(? AS VARCHAR[]))) ORDER BY idx", [record_type, record_ids])
    wanted = set(record_ids)
    found: dict[str, tuple[int, bytes]] = {}
    for idx, data in rows:
        try:
            e = decode_entry(bytes(data))
        except EntryError:
            continue
        if e.type == record_type and e.id in wanted:
            found.setdefault(e.id, (int(idx), bytes(data)))
    return found


def _purge_manifests(ledger: Ledger, purged: set[int]) -> dict[int, tuple[int, str, bytes]]:
    """For each ledger index in ``purged``, the sealed purge manifest listing it: (its ledger index, purge id,
    payload bytes as stored). Only manifests whose stored payload matches their entry are used."""
    if not purged:
        return {}
    found: dict[int, tuple[int, str, bytes]] = {}
    for idx, data in sorted(ledger.storage.find_entries(record_types=["purge"])):
        try:
            e = decode_entry(bytes(data))
        except EntryError:
            continue
        payload = ledger.storage.get_payloads("purge", [e.id]).get(e.id) if e.type == "purge" else None
        if payload is None or not payload_matches(e, bytes(payload)):
            continue
        try:
            listed = {int(r[0]) for r in orjson.loads(payload)["records"]}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            continue
        for i in listed & purged:
            found.setdefault(i, (int(idx), e.id, bytes(payload)))
    return found


def _checkpoint(ledger: Ledger, needed: int, since: str | None) -> tuple[Any, tuple[int, bytes] | None]:
    """ONE signed checkpoint covering ledger index ``needed`` (and the auditor's checkpoint, if given)."""
    old = None
    if since is not None:
        _, old_size, old_root = ledger.open_checkpoint(since)
        old = (old_size, old_root)
        needed = max(needed, old_size - 1)
    row = ledger.latest_checkpoint()
    if row is None or row.size <= needed:
        row = ledger.checkpoint()
    if row.size <= needed:
        raise PackageError(f"the ledger holds {row.size} entries, fewer than the checkpoint you hold "
                           f"({needed + 1}): the store was rolled back")
    if ledger.root(row.size) != row.root:
        raise PackageError(f"the stored tree does not match its checkpoint at size {row.size}: run `accessproof verify`")
    return row, old


class _Prover:
    """Inclusion proofs of many entries against one tree size: every tile they need in one read."""

    def __init__(self, ledger: Ledger, size: int, root: bytes, entries: dict[int, bytes]) -> None:
        self.size, self.root, self.entries = size, root, entries
        self.reader = ledger.reader(size)
        ranges = [r for i in entries for r in inclusion_ranges(i, size)]
        self.reader.prefetch(ranges, ledger.storage.read_tile_set)

    def proof(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        path = [self.reader.subtree(a, b) for a, b in inclusion_ranges(index, self.size)]
        try:
            verify_inclusion(index, self.size, ledger_leaf_hash(entry), path, self.root)
        except ProofError as exc:
            raise PackageError(f"ledger index {index} does not prove against the checkpoint ({exc}): run "
                               "`accessproof verify`") from None
        return {"index": index, "tree_size": self.size, "entry": _b64(entry),
                "leaf_hash": ledger_leaf_hash(entry).hex(), "inclusion_path": [_b64(h) for h in path]}


def _raw_rows(store: Store, raw_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = store.query_dicts("SELECT * FROM raw_records WHERE raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", [raw_ids])
    return {r["raw_id"]: r for r in rows}


def _normalised(store: Store, raw_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The canonical rows derived from each raw record (events, governance records, people)."""
    out: dict[str, dict[str, Any]] = {r: {"raw_id": r} for r in raw_ids}
    for table in ("events", "workflow_records", "persons"):
        for row in store.query_dicts(f"SELECT * FROM {table} WHERE raw_id IN (SELECT unnest(CAST(? AS VARCHAR[])))", [raw_ids]):
            out[row["raw_id"]].setdefault(table, []).append({k: W.iso(v) for k, v in row.items()})
    return out


def _preview(data: bytes | None) -> str:
    if data is None:
        return "(payload purged under retention; the ledger entry remains)"
    text = data[:4000].decode("utf-8", "replace")
    return text + ("…" if len(data) > 4000 else "")


def _xlsx(sheets: list[tuple[str, tuple[str, ...], list[list[Any]]]]) -> bytes:
    """A workbook, one sheet per table; text cells are stored as text and never start a formula."""
    from openpyxl import Workbook

    from accessproof.audit.matrix import _sheet

    wb = Workbook()
    wb.remove(wb.active)
    for title, columns, rows in sheets:
        _sheet(wb.create_sheet(title), tuple((c, c) for c in columns), rows)
    wb.properties.creator = "accessproof"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _finding_rows(findings: list[dict[str, Any]]) -> list[list[Any]]:
    return [[json.dumps(f.get("evidence_ids")) if c == "evidence_ids" else W.iso(f.get(c)) for c in FINDING_COLUMNS]
            for f in findings]


# ---------------------------------------------------------------- building


def build_package(store: Store, out: str | Path, *, control: str | None = None, sample: str | Path | None = None,
                  person: str | None = None, since_checkpoint: str | None = None,
                  now: datetime | None = None) -> PackageResult:
    """Write the package zip to ``out`` (atomically) for exactly one of ``control``, ``sample`` (a sample
    file's path) or ``person``; ``since_checkpoint`` is the text of a checkpoint note the auditor holds."""
    if sum(x is not None for x in (control, sample, person)) != 1:
        raise PackageError("give exactly one of --control, --sample or --person")
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    files = _Files()
    sample_doc: dict[str, Any] | None = None
    scope: dict[str, Any] = {"mode": "control" if control else "sample" if sample else "person"}
    if sample is not None:
        sample_doc, sample_bytes = load_sample(sample)
        items = _sample_items(sample_doc)
        control = str((sample_doc.get("control") or {}).get("id") or "") or None
        files.add("sample/sample.json", sample_bytes)
        scope.update(control=control, period=sample_doc.get("period"), sample="sample/sample.json",
                     title=f"sample of {control}")
    elif control is not None:
        items = _control_items(store, control)
        scope.update(control=control, title=f"control {control}")
    else:
        pid = person_id_of(store, str(person))
        items = _person_items(store, pid)
        scope.update(person=pid, title=f"person {pid}")
    try:
        ledger = open_ledger(store.dir, getattr(store, "con", None))
    except LedgerError as exc:
        raise PackageError(str(exc)) from None
    try:
        if ledger.signer is None:
            raise PackageError("this store has no signing key (keys/ledger.key): a package must be signed; "
                               "run `accessproof init` where the key lives")
        return _Builder(store, ledger, files, scope, items, sample_doc, created).build(Path(out), since_checkpoint)
    except (LedgerError, ControlError, EntryError) as exc:
        raise PackageError(str(exc)) from None
    finally:
        ledger.close()


class _Builder:
    """One package being built: its files, the sealed records it proves and those it cannot."""

    def __init__(self, store: Store, ledger: Ledger, files: _Files, scope: dict[str, Any], items: list[Item],
                 sample: dict[str, Any] | None, created: datetime) -> None:
        self.store, self.ledger, self.files, self.scope = store, ledger, files, scope
        self.items, self.sample, self.created = items, sample, created
        self.sealed: list[dict[str, Any]] = []
        self.unsealed: list[dict[str, Any]] = []
        self.warnings: list[str] = []

    def build(self, out: Path, since: str | None) -> PackageResult:
        store, ledger = self.store, self.ledger
        tables = W.present_tables(store)
        chains = [W.item_chain(store, it.raw_ids, it.subject, tables) for it in self.items]
        raw_ids = sorted({r for it in self.items for r in it.raw_ids} | {r for c in chains for r in c["raw_ids"]})
        raws = _raw_rows(store, raw_ids)
        missing = [(it.key, r) for it in self.items for r in it.raw_ids if r not in raws]
        if missing:
            raise PackageError(f"item {missing[0][0]} names raw record {missing[0][1]}, which this store does not "
                               "hold" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        raw_entries = _entries(store, "raw", raw_ids)
        if self.scope["mode"] == "person":
            control_ids = sorted({f["control_id"] for f in F.list_findings(store, person=self.scope["person"])})
        else:
            control_ids = [self.scope["control"]] if self.scope.get("control") else []
        runs = {cid: _latest_run(store, cid) for cid in control_ids}
        run_entries = _entries(store, "control_result", [r["run_id"] for r in runs.values() if r])
        entries = {i: e for i, e in (*raw_entries.values(), *run_entries.values())}
        gone = {idx for r, (idx, _) in raw_entries.items() if raws[r]["data"] is None}
        self.purges = _purge_manifests(ledger, gone)
        for midx, _, _ in self.purges.values():
            entries.setdefault(midx, ledger.entry(midx))
        pop_index = self.sample["population"]["ledger_index"] if self.sample else None
        if pop_index is not None:
            entries[pop_index] = ledger.entry(pop_index) if 0 <= pop_index < ledger.size else b""
            if not entries[pop_index]:
                raise PackageError(f"the sample's population entry {pop_index} is not in the ledger")
        row, old = _checkpoint(ledger, max(entries, default=0), since)
        self.prover = _Prover(ledger, row.size, row.root, entries)

        evidence = self._evidence(raw_ids, raws, {k: v[0] for k, v in raw_entries.items()})
        controls = self._controls(control_ids, runs, {k: v[0] for k, v in run_entries.items()})
        population = self._population(pop_index) if pop_index is not None else None
        consistency = self._consistency(old, since, row.size, row.root) if old is not None and since else None
        findings = (F.list_findings(store, person=self.scope["person"]) if self.scope["mode"] == "person"
                    else [f for cid in control_ids for f in F.list_findings(store, control=cid)])
        views = self._tables(chains, findings)
        log = {"origin": ledger.origin, "tree_size": row.size, "root": _b64(row.root),
               "checkpoint": V.CHECKPOINT_FILE, "key": V.KEY_FILE}
        files = self.files
        files.add(V.CHECKPOINT_FILE, row.note)
        files.add(V.KEY_FILE, str(ledger.signer.verifier) + "\n")  # type: ignore[union-attr]
        context = {"scope": self.scope, "tool_version": __version__, "created": self.created.isoformat(),
                   "log": log, "consistency": consistency, "population": (self.sample or {}).get("population"),
                   "method": (self.sample or {}).get("method") or {}, "items": views, "controls": controls,
                   "findings": [{k: W.iso(v) for k, v in f.items()} for f in findings],
                   "evidence_count": len(raw_ids), "sealed_count": len(raw_entries)}
        files.add("workpaper/index.html", W.render_index(context))
        for v in views:
            files.add(f"workpaper/{v['page']}", W.render_item({**context, "item": v, "evidence": evidence}))
        files.add("VERIFY.md", verify_text(log, consistency is not None, population is not None))
        files.add("verify.py", Path(V.__file__).read_bytes())
        files.add("SHA256SUMS", "".join(f"{hashlib.sha256(d).hexdigest()}  {p}\n" for p, d in sorted(files.data.items())))
        self.scope["items"] = len(self.items)
        manifest = {"format": V.FORMAT, "tool": {"name": "accessproof", "version": __version__},
                    "created": self.created.isoformat().replace("+00:00", "Z"), "scope": self.scope, "log": log,
                    "consistency": consistency, "population": population, "warnings": self.warnings,
                    "controls": [{k: c[k] for k in ("id", "yaml", "sql", "run", "results")} for c in controls],
                    "sealed": self.sealed, "unsealed": self.unsealed,
                    "files": {p: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                              for p, d in sorted(files.data.items())}}
        data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        note = ledger.signer.sign(V.manifest_note_text(hashlib.sha256(data).hexdigest()))  # type: ignore[union-attr]
        total = _write_zip(out, {V.MANIFEST: data, V.SIGNATURE: note.encode(), **files.data}, self.created)
        return PackageResult(out, len(self.items), len(raw_ids), len(self.sealed), row.size, len(files.data) + 2,
                             total, self.warnings)

    def _seal(self, record_type: str, record_id: str, index: int, payload: str | None, proof: str) -> str:
        """Write the inclusion proof of one sealed record and list it for the verifier."""
        self.files.json(proof, self.prover.proof(index))
        self.sealed.append({"record_type": record_type, "record_id": record_id, "index": index, "proof": proof,
                            "payload": payload})
        return proof

    def _purge_file(self, index: int, purge_id: str, payload: bytes) -> str:
        """The sealed purge manifest (bytes as stored) and its proof, once per manifest; returns its path."""
        path = f"ledger/purges/{_safe(purge_id)}.json"
        if path not in self.files.data:
            self.files.add(path, payload)
            self._seal("purge", purge_id, index, path, f"ledger/purges/{_safe(purge_id)}.proof.json")
        return path

    def _evidence(self, raw_ids: list[str], raws: dict[str, dict[str, Any]], indexes: dict[str, int]
                  ) -> dict[str, dict[str, Any]]:
        """Per raw record: the bytes as ingested, the normalised rows and the proof of its entry."""
        normalised = _normalised(self.store, raw_ids)
        evidence: dict[str, dict[str, Any]] = {}
        for raw_id in raw_ids:
            r, base = raws[raw_id], f"evidence/{_safe(raw_id)}"
            payload, idx = r["data"], indexes.get(raw_id)
            ev = {"raw": None, "normalised": self.files.json(f"{base}/normalised.json", normalised[raw_id]),
                  "proof": None, "index": idx, "source": r["source"], "position": r["position"],
                  "preview": _preview(payload)}
            if payload is not None:  # a purged payload is gone; its entry is still proven
                ev["raw"] = self.files.add(f"{base}/raw.{_RAW_EXT.get(str(r['source_type']), 'bin')}", bytes(payload))
            if idx is None:
                self.unsealed.append({"record_id": raw_id, "payload": ev["raw"] or ev["normalised"],
                                      "why": "no ledger entry seals it"})
            else:
                ev["proof"] = self._seal("raw", raw_id, idx, ev["raw"], f"{base}/proof.json")
            evidence[raw_id] = ev
        gone = [(r, ev["index"]) for r, ev in evidence.items() if ev["raw"] is None and ev["index"] is not None]
        if gone:
            purged = {i: self._purge_file(*self.purges[i]) for _, i in gone if i in self.purges}
            for item in self.sealed:
                if item["payload"] is None and item["record_type"] == "raw":
                    item["gone"] = "purged" if item["index"] in purged else "missing"
                    if item["index"] in purged:
                        item["purged_by"] = purged[item["index"]]
            self.warnings += [f"raw record {raw_id}: payload purged under retention (entry {idx} proven)"
                              if idx in purged else f"raw record {raw_id}: payload missing from the store and no "
                              f"sealed purge manifest lists it (entry {idx} proven)" for raw_id, idx in gone]
        return evidence

    def _controls(self, control_ids: list[str], runs: dict[str, dict[str, Any] | None], indexes: dict[str, int]
                  ) -> list[dict[str, Any]]:
        """Definition, latest run (its sealed bytes and proof) and result rows of each control in scope."""
        catalogue = load_catalogue()
        out = []
        for cid in control_ids:
            c, base, run = catalogue.get(cid), f"controls/{_safe(cid)}", runs.get(cid)
            entry: dict[str, Any] = {"id": cid, "title": c.title if c else (run or {}).get("title"), "yaml": None,
                                     "sql": None, "run": None, "results": None, "run_id": None, "results_csv": None}
            if c is None:  # a control of the user's own folder: its results, without the definition
                self.warnings.append(f"control {cid} is not in the built-in catalogue: no definition included")
            else:
                folder = Path(str(c.path))
                entry["yaml"] = self.files.add(f"{base}/control.yaml", (folder / "control.yaml").read_bytes())
                entry["sql"] = self.files.add(f"{base}/query.sql", (folder / "query.sql").read_bytes())
            if run is not None:
                rows = self.store.query_dicts("SELECT * FROM control_results WHERE run_id = ? ORDER BY finding_id",
                                              [run["run_id"]])
                entry["results"] = self.files.json(f"{base}/results.json", rows)
                entry["results_csv"] = self.files.add(f"{base}/results.csv", to_csv(
                    list(rows[0]) if rows else ["run_id"], [list(r.values()) for r in rows]))
                entry["run_id"], entry["run_summary"] = run["run_id"], run
                payload = self.ledger.storage.get_payloads("control_result", [run["run_id"]]).get(run["run_id"])
                idx = indexes.get(run["run_id"])
                if idx is None or payload is None:
                    self.files.json(f"{base}/run-unsealed.json", run)
                    self.unsealed.append({"record_id": run["run_id"], "payload": f"{base}/run-unsealed.json",
                                          "why": f"the latest run of {cid} was not sealed"})
                else:
                    entry["run"] = self.files.add(f"{base}/run.json", bytes(payload))
                    self._seal("control_result", run["run_id"], idx, entry["run"], f"{base}/run.proof.json")
            out.append(entry)
        return out

    def _population(self, idx: int) -> dict[str, Any]:
        """The sealed population entry the sample was drawn from, with the exact payload bytes it seals."""
        pop = self.sample["population"]  # type: ignore[index]
        entry = decode_entry(self.prover.entries[idx])
        if entry.type != "population":
            raise PackageError(f"ledger index {idx} seals a {entry.type} record, not the sample's population")
        stored = self.ledger.storage.get_payloads(entry.type, [entry.id]).get(entry.id)
        candidates = [bytes(stored)] if stored is not None else []
        if isinstance(pop.get("payload"), dict):
            candidates += [rfc8785.dumps(pop["payload"]), orjson.dumps(pop["payload"], option=orjson.OPT_SORT_KEYS)]
        payload = next((c for c in candidates if payload_matches(entry, c)), None)
        if payload is None:
            raise PackageError(f"population at ledger index {idx}: neither the store nor the sample file holds "
                               "the payload its entry seals")
        path = self.files.add("population/population.json", payload)
        proof = self._seal("population", entry.id, idx, path, "population/proof.json")
        return {"payload": path, "proof": proof, "sample": "sample/sample.json", "ledger_index": idx}

    def _consistency(self, old: tuple[int, bytes], since: str, size: int, root: bytes) -> dict[str, Any]:
        """The consistency proof from the checkpoint the auditor holds to the package's."""
        old_size, old_root = old
        path = self.ledger.consistency_proof(old_size, size)
        try:
            verify_consistency(old_size, size, old_root, root, path)
        except ProofError as exc:
            raise PackageError(f"the ledger is not consistent with the checkpoint you hold ({exc})") from None
        self.files.add("ledger/since-checkpoint.note", since)
        self.files.json("ledger/consistency.json", {
            "old_size": old_size, "new_size": size, "old_root": _b64(old_root), "new_root": _b64(root),
            "consistency_path": [_b64(h) for h in path]})
        return {"since": "ledger/since-checkpoint.note", "proof": "ledger/consistency.json", "old_size": old_size}

    def _tables(self, chains: list[dict[str, Any]], findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """items.json, items.csv, findings.csv and package.xlsx; returns the items as the workpaper shows them."""
        views, rows = [], []
        for n, (it, chain) in enumerate(zip(self.items, chains, strict=True), 1):
            summary, person = W.chain_summary(chain), chain["person"]
            when = it.time or next((s["time"] for s in chain["steps"] if s["time"]), None)
            views.append({"n": n, "key": it.key, "subject": it.subject, "time": when, "summary": it.summary,
                          "person": person, "chain": chain, "stage_summary": summary, "page": f"item-{n:04d}.html"})
            rows.append([n, it.key, it.subject, person["display_name"] if person else None, when, it.summary,
                         *(summary[s] for s in W.STAGES), len(chain["raw_ids"])])
        self.files.json("items.json", [{"key": v["key"], "subject": v["subject"], "time": v["time"],
                                        "summary": v["summary"], "raw_ids": it.raw_ids, "chain": v["chain"]}
                                       for v, it in zip(views, self.items, strict=True)])
        self.files.add("items.csv", to_csv(ITEM_COLUMNS, rows))
        self.files.add("findings.csv", to_csv(FINDING_COLUMNS, _finding_rows(findings)))
        self.files.add("package.xlsx", _xlsx([("Items", ITEM_COLUMNS, rows),
                                              ("Findings", FINDING_COLUMNS, _finding_rows(findings))]))
        return views


def _write_zip(out: Path, files: dict[str, bytes], created: datetime) -> int:
    """Write the zip through a temporary file in the same folder (never a half-written package)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    stamp = created.timetuple()[:6]
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            for name in sorted(files, key=lambda n: (n not in (V.MANIFEST, V.SIGNATURE), n)):
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, files[name])
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out.stat().st_size


def verify_text(log: dict[str, Any], consistency: bool, population: bool) -> str:
    """VERIFY.md: how to check this package with public tools alone."""
    text = VERIFY_MD.replace("{origin}", log["origin"]).replace("{size}", str(log["tree_size"]))
    text = text.replace("{root}", log["root"])
    text = text.replace("{consistency}", "" if consistency else "This package was built without "
                        "`--since-checkpoint`, so it holds no consistency proof.\n")
    return text.replace("{population}", "" if population else "This package holds no sampled population.\n")


VERIFY_MD = """# Verifying this audit package

Everything here can be checked without accessproof: the formats are public specifications
(SHA-256, RFC 9162 Merkle proofs, C2SP signed notes and tlog-checkpoints). The shortest way is the
standalone verifier included as `verify.py` (Python 3.11+ and the `cryptography` package only):

    python3 verify.py PACKAGE.zip --key "$(cat ledger.vkey)"

Pin the verifier key you obtained out of band (from the organisation, not from this package); without
`--key` the key in `key/ledger.vkey` is used and a warning says so. Exit status 0 means every check held;
otherwise each failure is one line naming the file and what is wrong. The steps below do the same by hand.

This package: log `{origin}`, checkpoint tree size {size}, root hash (base64) `{root}`.

## 1. Every file is the one the manifest lists

`manifest.json` lists every other file (except `manifest.sig`) with its SHA-256 and size. `SHA256SUMS`
holds the same hashes in the format of coreutils:

    unzip PACKAGE.zip -d pkg && cd pkg && sha256sum -c SHA256SUMS

and compare it with the manifest (e.g. `jq -r '.files | to_entries[] | "\\(.value.sha256)  \\(.key)"'
manifest.json`). A file present but not listed, or listed but absent, fails the package.

## 2. The manifest is signed by the ledger key

`manifest.sig` is a C2SP signed note (https://c2sp.org/signed-note), Ed25519, by the same key as the
ledger's checkpoints. Its text is two lines:

    accessproof.package/1
    manifest.json sha256 <the hex SHA-256 of manifest.json>

With Go's `golang.org/x/mod/sumdb/note`: `v, _ := note.NewVerifier(vkey)`, then
`n, err := note.Open(sig, note.VerifierList(v))`; `err == nil` and `n.Text` naming `sha256sum manifest.json`.
(The key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key); the signature line is
`\u2014 <name> base64(key ID || Ed25519 signature over the text)`.) The second line is not a number, so
such a note can never pass for a checkpoint.

## 3. The checkpoint

`ledger/checkpoint.note` is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) signed by the
same key: lines origin, tree size (decimal), root hash (base64). Open it as in step 2.

## 4. Each sealed record is in the log, and its payload is what was sealed

Each `evidence/<raw id>/proof.json` (and `population/proof.json`, `controls/<id>/run.proof.json`) holds
`index`, `tree_size` (the checkpoint's), `entry` (base64 of the ledger entry bytes), `leaf_hash` and
`inclusion_path` (base64 hashes, from the leaf upwards). Check (RFC 9162 section 2.1.3.2):

    import base64, hashlib, json
    def node(l, r): return hashlib.sha256(b"\\x01" + l + r).digest()
    def root_from_path(index, size, leaf, path):
        fn, sn, r = index, size - 1, leaf
        for p in path:
            if sn == 0: raise ValueError("path too long")
            if fn & 1 or fn == sn:
                r = node(p, r)
                while not fn & 1 and fn != 0:
                    fn >>= 1; sn >>= 1
            else:
                r = node(r, p)
            fn >>= 1; sn >>= 1
        if sn != 0: raise ValueError("path too short")
        return r
    proof = json.load(open("evidence/<raw id>/proof.json"))
    entry = base64.b64decode(proof["entry"])
    leaf = hashlib.sha256(b"\\x00" + entry).digest()
    path = [base64.b64decode(h) for h in proof["inclusion_path"]]
    assert root_from_path(proof["index"], proof["tree_size"], leaf, path) == base64.b64decode("{root}")
    e = json.loads(entry)   # {"id", "payload_sha256", "retention", "salt", "sealed", "source", "type", ...}
    raw = open("evidence/<raw id>/raw.json", "rb").read()   # raw.csv / raw.bin: the bytes as ingested
    assert hashlib.sha256(bytes.fromhex(e["salt"]) + raw).hexdigest() == e["payload_sha256"]

The entry's `id` and `type` must be the record the manifest's `sealed` list names for that proof. The
`normalised.json` beside each raw file is what accessproof derived from those bytes, for reading; it is
covered by the manifest, not by the ledger. A record whose payload was purged under retention has no raw
file (`"payload": null, "gone": "purged"` in the manifest's `sealed` list): its entry is still proven, so
the record provably existed, and the purge itself is proven too. Its `purged_by` names
`ledger/purges/<purge id>.json`, the purge manifest the ledger sealed when the payload was deleted (bytes
as stored), proven like any record above by `ledger/purges/<purge id>.proof.json` (entry type `purge`,
salted payload hash) against the same checkpoint. Its `records` list must hold
`[index, record type, record id]` of the purged record (e.g. `[17, "raw", "<raw id>"]`); a record marked
purged that no such proven manifest lists fails verification. `"gone": "missing"` means the store lost it
with no sealed purge manifest saying why, and the package fails verification.

## 5. The log has only grown since the checkpoint you hold

{consistency}`ledger/consistency.json` proves (RFC 9162 section 2.1.4.2) that the tree of
`ledger/since-checkpoint.note` (the checkpoint you gave) is a prefix of this package's checkpoint: check the
old note's signature (step 2), then the path from its size and root to this size and root.

## 6. The population is complete and the sample was drawn from it

{population}`population/population.json` is the sealed population (proven as in step 4 at the
`ledger_index` that `sample/sample.json` names): its `count` equals the number of its `keys`, and the
sample's `population.digest` is the hex SHA-256 of the canonical JSON list of the sorted keys (no spaces,
UTF-8: `json.dumps(sorted(keys), separators=(",", ":"), ensure_ascii=False)`). Every item of the sample is
one of the keys; the seed and algorithm in `sample/sample.json` let you redraw it.

## 7. Control results are the ones sealed

`controls/<id>/run.json` is the sealed record of the control's latest run (proven as in step 4). Its
`results_digest` is the hex SHA-256 of the lines `finding_id|status|reason|evidence_ids_json` of
`controls/<id>/results.json`, ordered by `finding_id` and joined by newlines (a missing reason is empty).

## Reading the package

`workpaper/index.html` lists the items; each item page shows the chain request -> approval -> execution ->
removal with times, actors, the link basis and links to the evidence files. `items.csv`, `findings.csv` and
`package.xlsx` hold the same for spreadsheets: a cell that would start a formula (= + - @, tab, carriage
return) is prefixed with a single quote, and XLSX text cells are stored as text.
"""
