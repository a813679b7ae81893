"""Offline verification of an accessproof audit package, written to be shipped alone.

This module imports only the Python standard library and ``cryptography`` (for Ed25519), never the rest of
accessproof: an auditor can copy it (every package carries it as ``verify.py``) and run
``python verify.py PKG.zip [--key VKEY]`` without trusting, or even installing, the tool that built the
package. Everything it checks is a public format:

* ``manifest.json`` lists every other file with its SHA-256 and size; no file may be missing or extra;
* ``manifest.sig`` is a C2SP signed note (Ed25519) whose text names the manifest's SHA-256;
* ``ledger/checkpoint.note`` is a C2SP tlog-checkpoint (origin, tree size, root hash) signed by the key;
* each ``proofs/…json`` is an RFC 9162 inclusion proof of one sealed ledger entry (the entry bytes, its
  index and audit path) against that checkpoint's root; the entry's salted payload hash must match the
  payload file it seals: SHA-256(salt ‖ payload bytes);
* a record whose payload was purged under retention (``"gone": "purged"``) must be listed, by ledger index,
  record type and id, in the sealed purge manifest it names (``purged_by``), itself included and proven
  against the same checkpoint like any sealed record; the flag alone proves nothing;
* ``ledger/consistency.json`` (when the package was built ``--since-checkpoint``) is an RFC 9162
  consistency proof from the checkpoint the auditor already held to the package's checkpoint;
* a sampled package's population: the sealed population payload's ``count`` equals its number of keys,
  its ``digest`` is SHA-256 of the canonical JSON list of its sorted keys, it is the one sampled from,
  every sampled item is one of its keys, and the payload is proven in the ledger like any other;
* a control's sealed run proves its results: SHA-256 over the result rows (``finding_id|status|reason|
  evidence ids`` in finding-id order, newline-joined) is the run's ``results_digest``.

The proof algorithms follow transparency-dev/merkle's ``RootFromInclusionProof`` / ``VerifyConsistency``
(decomposition into inner and border parts), not the code that made the proofs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "accessproof.package/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
KEY_FILE = "key/ledger.vkey"
CHECKPOINT_FILE = "ledger/checkpoint.note"
UNLISTED = (MANIFEST, SIGNATURE)  # the two files the manifest cannot list
EM_DASH = "\u2014"


def manifest_note_text(manifest_sha256: str) -> str:
    """The text ``manifest.sig`` signs. Its second line is not a number, so it can never pass for a
    tlog-checkpoint signed by the same key."""
    return f"{FORMAT}\n{MANIFEST} sha256 {manifest_sha256}\n"


# ---------------------------------------------------------------- RFC 9162 proofs


def _hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _decomp(index: int, size: int) -> tuple[int, int]:
    inner = (index ^ (size - 1)).bit_length()
    return inner, bin(index >> inner).count("1")


def _chain_inner(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = _hash_children(seed, h) if (index >> i) & 1 == 0 else _hash_children(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = _hash_children(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: list[bytes]) -> bytes:
    for h in proof:
        seed = _hash_children(h, seed)
    return seed


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root an inclusion proof leads to; ValueError when its shape is wrong."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    inner, border = _decomp(index, size)
    if len(proof) != inner + border:
        raise ValueError(f"proof has {len(proof)} hashes, a tree of size {size} needs {inner + border}")
    return _chain_border_right(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def check_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> None:
    """ValueError unless the tree of ``size1`` and ``root1`` is a prefix of the one of ``size2``/``root2``."""
    if size2 < size1:
        raise ValueError(f"size {size2} cannot extend size {size1}")
    if size1 == size2:
        if proof or root1 != root2:
            raise ValueError("same size: the proof must be empty and the roots equal")
        return
    if size1 == 0:
        if proof:
            raise ValueError("a proof from the empty tree must be empty")
        return
    if not proof:
        raise ValueError("empty proof")
    inner, border = _decomp(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ValueError(f"proof has {len(proof)} hashes, expected {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    if _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:]) != root1:
        raise ValueError("proof does not lead to the old root")
    if _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:]) != root2:
        raise ValueError("proof does not lead to the new root")


# ---------------------------------------------------------------- C2SP signed notes


@dataclass(frozen=True)
class NoteKey:
    """A C2SP signed-note verifier key ``name+hex(key id)+base64(0x01 ‖ Ed25519 public key)``."""

    name: str
    key_id: bytes
    public: bytes
    text: str

    @classmethod
    def parse(cls, text: str) -> NoteKey:
        parts = text.strip().split("+", 2)  # base64 may hold "+", a name may not
        if len(parts) != 3 or not parts[0]:
            raise ValueError("a verifier key is name+hash+key")
        name, hexid, b64 = parts
        try:
            raw, key_id = base64.b64decode(b64, validate=True), bytes.fromhex(hexid)
        except (binascii.Error, ValueError):
            raise ValueError("the verifier key is not valid hex/base64") from None
        if len(raw) != 33 or raw[0] != 1 or len(key_id) != 4:
            raise ValueError("not an Ed25519 signed-note key")
        if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != key_id:
            raise ValueError("the key's hash does not match its name and key")
        return cls(name, key_id, raw[1:], text.strip())


def open_note(note: str, key: NoteKey) -> str:
    """The note's text when ``key`` signed it; ValueError otherwise."""
    if not note.endswith("\n"):
        raise ValueError("a signed note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise ValueError("no signature block")
    text, signatures = note[: split + 1], note[split + 2 :]
    for line in signatures[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, b64 = rest.partition(" ")
        if dash != EM_DASH or not name or not b64:
            raise ValueError("malformed signature line")
        try:
            blob = base64.b64decode(b64, validate=True)
        except binascii.Error:
            raise ValueError("malformed signature line") from None
        if name != key.name or blob[:4] != key.key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(blob[4:], text.encode())
        except InvalidSignature:
            raise ValueError(f"the signature by {name} does not verify") from None
        return text
    raise ValueError(f"not signed by {key.name}")


def checkpoint_fields(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a tlog-checkpoint body."""
    lines = text.split("\n")
    if len(lines) < 4 or not lines[1].isdigit():
        raise ValueError("a checkpoint is origin, size and root hash lines")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        raise ValueError("the checkpoint root is not base64") from None
    if len(root) != 32:
        raise ValueError("the checkpoint root is not a SHA-256 hash")
    return lines[0], int(lines[1]), root


# ---------------------------------------------------------------- the package


@dataclass
class Report:
    """What ``verify_package`` found: ``ok`` only when ``failures`` is empty."""

    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, where: str, what: str) -> None:
        self.failures.append(f"{where}: {what}")

    def summary(self) -> str:
        facts = ", ".join(f"{v} {k}" for k, v in self.counts.items())
        return f"{'ok' if self.ok else f'FAILED ({len(self.failures)} problems)'}: {facts}"


def read_files(path: str | Path, report: Report) -> dict[str, bytes]:
    """Every file of a package zip (or of a folder it was unpacked into), by its path inside."""
    p = Path(path)
    files: dict[str, bytes] = {}
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            files[f.relative_to(p).as_posix()] = f.read_bytes()
        return files
    try:
        with zipfile.ZipFile(p) as z:
            for info in z.infolist():
                name = info.filename
                if name.endswith("/"):
                    continue
                if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                    report.fail(name, "unsafe path in the zip")
                    continue
                if name in files:
                    report.fail(name, "appears twice in the zip")
                    continue
                files[name] = z.read(info)
    except (zipfile.BadZipFile, OSError) as exc:
        report.fail(str(p), f"not a readable zip ({exc})")
    return files


def _json(files: dict[str, bytes], name: str, report: Report) -> Any:
    try:
        return json.loads(files[name])
    except KeyError:
        report.fail(name, "missing")
    except (ValueError, UnicodeDecodeError) as exc:
        report.fail(name, f"not JSON ({exc})")
    return None


def _b64list(values: Any) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError("the path is not a list")
    out = [base64.b64decode(v, validate=True) for v in values]
    if any(len(h) != 32 for h in out):
        raise ValueError("a path hash is not 32 bytes")
    return out


def _check_files(files: dict[str, bytes], manifest: dict[str, Any], report: Report) -> None:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        report.fail(MANIFEST, "has no files list")
        return
    for name, meta in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            report.fail(name, "listed in the manifest but missing from the package")
            continue
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            report.fail(name, "SHA-256 differs from the manifest (the file was changed)")
        elif len(data) != meta.get("size"):
            report.fail(name, f"size {len(data)} differs from the manifest's {meta.get('size')}")
    for name in sorted(set(files) - set(listed) - set(UNLISTED)):
        report.fail(name, "in the package but not in the manifest (an added file)")
    report.counts["files"] = len(listed)


def _key(files: dict[str, bytes], pinned: str | None, report: Report) -> NoteKey | None:
    inside = files.get(KEY_FILE, b"").decode("utf-8", "replace").strip()
    if pinned is None:
        report.warnings.append(f"using the key inside the package ({KEY_FILE}); an auditor should pin the "
                               "key obtained out of band with --key")
        text, where = inside, KEY_FILE
    else:
        text, where = pinned, "--key"
        if inside and inside != pinned.strip():
            report.fail(KEY_FILE, "is not the pinned key given with --key")
    try:
        return NoteKey.parse(text)
    except ValueError as exc:
        report.fail(where, f"unusable verifier key ({exc})")
        return None


def _check_signature(files: dict[str, bytes], key: NoteKey, report: Report) -> None:
    note = files.get(SIGNATURE)
    if note is None:
        report.fail(SIGNATURE, "missing: the manifest is not signed")
        return
    try:
        text = open_note(note.decode("utf-8"), key)
    except (ValueError, UnicodeDecodeError) as exc:
        report.fail(SIGNATURE, f"manifest signature rejected ({exc})")
        return
    if text != manifest_note_text(hashlib.sha256(files.get(MANIFEST, b"")).hexdigest()):
        report.fail(SIGNATURE, "signs a different manifest (the manifest was changed)")


def _checkpoint(files: dict[str, bytes], key: NoteKey, manifest: dict[str, Any], report: Report
                ) -> tuple[int, bytes] | None:
    log = manifest.get("log") or {}
    name = log.get("checkpoint", CHECKPOINT_FILE)
    try:
        origin, size, root = checkpoint_fields(open_note(files[name].decode("utf-8"), key))
    except KeyError:
        report.fail(name, "missing")
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        report.fail(name, f"checkpoint rejected ({exc})")
        return None
    if origin != log.get("origin"):
        report.fail(name, f"checkpoint is for log {origin!r}, the manifest says {log.get('origin')!r}")
    if size != log.get("tree_size"):
        report.fail(name, f"checkpoint size {size} differs from the manifest's {log.get('tree_size')}")
    return size, root


def _check_sealed(files: dict[str, bytes], item: dict[str, Any], size: int, root: bytes, report: Report
                  ) -> bool:
    """One sealed record: its inclusion proof and, unless purged, its payload against the entry."""
    proof_name = str(item.get("proof"))
    label = f"{item.get('record_type')} {item.get('record_id')}"
    proof = _json(files, proof_name, report)
    if not isinstance(proof, dict):
        return False
    try:
        entry = base64.b64decode(proof["entry"], validate=True)
        index, path = int(proof["index"]), _b64list(proof["inclusion_path"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        report.fail(proof_name, f"malformed proof of {label} ({exc})")
        return False
    if index != item.get("index"):
        report.fail(proof_name, f"proves ledger index {index}, the manifest says {label} is at {item.get('index')}")
        return False
    if proof.get("tree_size") != size:
        report.fail(proof_name, f"is against tree size {proof.get('tree_size')}, not the checkpoint's {size}")
        return False
    leaf = leaf_hash(entry)
    if proof.get("leaf_hash") not in (None, leaf.hex()):
        report.fail(proof_name, f"leaf_hash is not SHA-256(0x00 ‖ entry) at index {index}")
    try:
        if root_from_inclusion(index, size, leaf, path) != root:
            report.fail(proof_name, f"inclusion proof of index {index} ({label}) does not lead to the "
                                    "checkpoint root")
            return False
    except ValueError as exc:
        report.fail(proof_name, f"inclusion proof of index {index} ({label}) is malformed ({exc})")
        return False
    try:
        sealed = json.loads(entry)
        salt, digest = bytes.fromhex(sealed["salt"]), sealed["payload_sha256"]
    except (ValueError, KeyError, TypeError):
        report.fail(proof_name, f"ledger entry {index} is not an accessproof entry")
        return False
    if (sealed.get("type"), sealed.get("id")) != (item.get("record_type"), item.get("record_id")):
        report.fail(proof_name, f"entry {index} seals {sealed.get('type')} {sealed.get('id')}, not {label}")
        return False
    payload_name = item.get("payload")
    if payload_name is None:
        if item.get("gone") == "purged":
            return True  # whether a proven purge manifest lists it is checked once all are proven
        report.fail(proof_name, f"{label} is proven but its payload is missing and no sealed purge manifest "
                                "lists it")
        return False
    payload = files.get(str(payload_name))
    if payload is None:
        report.fail(str(payload_name), f"payload of {label} missing")
        return False
    if hashlib.sha256(salt + payload).hexdigest() != digest:
        report.fail(str(payload_name), f"does not hash to the payload hash sealed at ledger index {index}")
        return False
    return True


def _check_purged(files: dict[str, bytes], item: dict[str, Any], purges: dict[str, int], report: Report) -> None:
    """A record marked purged: the sealed purge manifest it names is proven here and lists it."""
    label = f"{item.get('record_type')} {item.get('record_id')}"
    where, name = str(item.get("proof")), item.get("purged_by")
    if not name:
        report.fail(where, f"{label} is marked purged but names no sealed purge manifest")
        return
    if name not in purges:
        why = "is not a purge manifest proven in the ledger" if name in files else "is missing"
        report.fail(str(name), f"{why}: nothing proves {label} was purged")
        return
    body = _json(files, str(name), report)
    listed = body.get("records") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        report.fail(str(name), "is not a purge manifest (no list of records)")
        return
    if [item.get("index"), item.get("record_type"), item.get("record_id")] not in listed:
        report.fail(str(name), f"does not list {label} (ledger index {item.get('index')}) as purged")
        return
    report.warnings.append(f"{where}: {label} is proven, its payload was purged under retention (listed in "
                           f"{name}, proven at ledger index {purges[name]})")


def _check_consistency(files: dict[str, bytes], key: NoteKey, manifest: dict[str, Any], size: int,
                       root: bytes, report: Report) -> None:
    c = manifest.get("consistency")
    if not c:
        return
    name, since = str(c.get("proof")), str(c.get("since"))
    proof = _json(files, name, report)
    try:
        origin, old_size, old_root = checkpoint_fields(open_note(files[since].decode("utf-8"), key))
    except KeyError:
        report.fail(since, "missing")
        return
    except (ValueError, UnicodeDecodeError) as exc:
        report.fail(since, f"the earlier checkpoint is rejected ({exc})")
        return
    if origin != (manifest.get("log") or {}).get("origin"):
        report.fail(since, f"the earlier checkpoint is for another log ({origin!r})")
        return
    if not isinstance(proof, dict):
        return
    try:
        path = _b64list(proof.get("consistency_path"))
        check_consistency(old_size, size, old_root, root, path)
    except (ValueError, binascii.Error) as exc:
        report.fail(name, f"consistency from size {old_size} to {size} fails ({exc})")
        return
    report.counts["consistency proofs"] = 1


def canonical_keys_digest(keys: list[str]) -> str:
    """SHA-256 hex of the canonical JSON (RFC 8785: no spaces, UTF-8) list of the keys in sorted order."""
    return hashlib.sha256(json.dumps(sorted(keys), separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


def _check_population(files: dict[str, bytes], manifest: dict[str, Any], proven: dict[str, int],
                      report: Report) -> None:
    """The sampled population: sealed, counted, digested, and the sample drawn from it."""
    pop = manifest.get("population")
    if not pop:
        return
    name, sample_name = str(pop.get("payload")), str(pop.get("sample"))
    payload, sample = _json(files, name, report), _json(files, sample_name, report)
    if not isinstance(payload, dict) or not isinstance(sample, dict):
        return
    keys = payload.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        report.fail(name, "the population payload has no list of keys")
        return
    claimed = sample.get("population") or {}
    digest = canonical_keys_digest(keys)
    if keys != sorted(set(keys)):
        report.fail(name, "population keys are not sorted and unique")
    if payload.get("count") != len(keys):
        report.fail(name, f"population count {payload.get('count')} differs from its {len(keys)} keys")
    if claimed.get("count") != len(keys):
        report.fail(sample_name, f"population count {claimed.get('count')} differs from the "
                                 f"{len(keys)} keys sealed")
    if claimed.get("digest") != digest or payload.get("digest", digest) != digest:
        report.fail(sample_name, "population digest is not SHA-256 of the sealed population's sorted keys")
    if name not in proven:
        report.fail(name, "the population payload is not proven in the ledger")
    elif proven[name] != claimed.get("ledger_index"):
        report.fail(name, f"proven at ledger index {proven[name]}, the sample says "
                          f"{claimed.get('ledger_index')}")
    members = set(keys)
    for item in sample.get("items") or []:
        if not isinstance(item, dict) or item.get("key") not in members:
            report.fail(sample_name, f"sampled item {item.get('key') if isinstance(item, dict) else item!r} "
                                     "is not in the population")
    report.counts["population keys"] = len(keys)


def results_digest(rows: list[dict[str, Any]]) -> str:
    """What a control run seals over its rows (``controls.findings.finish_run``)."""
    ordered = sorted(rows, key=lambda r: str(r["finding_id"]))
    lines = [f"{r['finding_id']}|{r['status']}|{r.get('reason') or ''}|{r['evidence_ids_json']}" for r in ordered]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _check_runs(files: dict[str, bytes], manifest: dict[str, Any], proven: dict[str, int], report: Report
                ) -> None:
    for c in manifest.get("controls") or []:
        run_name, results_name = c.get("run"), c.get("results")
        if not run_name or not results_name:
            continue
        run, rows = _json(files, run_name, report), _json(files, results_name, report)
        if not isinstance(run, dict) or not isinstance(rows, list):
            continue
        if run_name not in proven:
            report.fail(run_name, f"the run of {c.get('id')} is not proven in the ledger")
        try:
            digest = results_digest(rows)
        except (KeyError, TypeError):
            report.fail(results_name, "result rows lack finding_id, status or evidence_ids_json")
            continue
        if digest != run.get("results_digest"):
            report.fail(results_name, f"rows do not hash to the sealed run's results_digest ({c.get('id')})")
        elif run.get("population") != len(rows):
            report.fail(results_name, f"{len(rows)} rows, the sealed run counted {run.get('population')}")


def verify_package(path: str | Path, key: str | None = None) -> Report:
    """Check a package zip (or unpacked folder) end to end; ``key`` is the verifier key to pin (text or a
    file holding it). Never raises for a bad package: every problem is a line in ``failures``."""
    report = Report()
    if key is not None and Path(key).is_file():
        key = Path(key).read_text(encoding="utf-8")
    files = read_files(path, report)
    manifest = _json(files, MANIFEST, report) if files else None
    if not isinstance(manifest, dict):
        if files and MANIFEST in files:
            report.fail(MANIFEST, "is not a JSON object")
        return report
    if manifest.get("format") != FORMAT:
        report.fail(MANIFEST, f"format {manifest.get('format')!r} is not {FORMAT}")
        return report
    try:
        _verify(files, manifest, key, report)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a manifest of the wrong shape
        report.fail(MANIFEST, f"malformed ({type(exc).__name__}: {exc})")
    return report


def _verify(files: dict[str, bytes], manifest: dict[str, Any], key: str | None, report: Report) -> None:
    _check_files(files, manifest, report)
    note_key = _key(files, key, report)
    if note_key is None:
        return
    _check_signature(files, note_key, report)
    head = _checkpoint(files, note_key, manifest, report)
    if head is None:
        return
    size, root = head
    proven: dict[str, int] = {}  # payload file -> the ledger index that proves it
    purges: dict[str, int] = {}  # the same, for sealed purge manifests
    sealed = manifest.get("sealed") or []
    for item in sealed:
        if _check_sealed(files, item, size, root, report) and item.get("payload"):
            proven[str(item["payload"])] = int(item["index"])
            if item.get("record_type") == "purge":
                purges[str(item["payload"])] = int(item["index"])
    for item in sealed:
        if item.get("payload") is None and item.get("gone") == "purged":
            _check_purged(files, item, purges, report)
    report.counts["inclusion proofs"] = len(sealed)
    for item in manifest.get("unsealed") or []:
        report.warnings.append(f"{item.get('payload')}: {item.get('record_id')} has no ledger entry "
                               f"({item.get('why', 'not sealed')})")
    _check_consistency(files, note_key, manifest, size, root, report)
    _check_population(files, manifest, proven, report)
    _check_runs(files, manifest, proven, report)


def main(argv: list[str] | None = None) -> int:
    """``python verify.py PKG.zip [--key VKEY]``: exit 0 only if every check holds."""
    args = list(sys.argv[1:] if argv is None else argv)
    key = None
    if "--key" in args:
        i = args.index("--key")
        if i + 1 >= len(args):
            print("usage: verify.py PKG.zip [--key VKEY]", file=sys.stderr)
            return 2
        key = args[i + 1]
        del args[i : i + 2]
    if len(args) != 1:
        print("usage: verify.py PKG.zip [--key VKEY]", file=sys.stderr)
        return 2
    report = verify_package(args[0], key)
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for f in report.failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
