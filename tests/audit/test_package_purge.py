"""Purged payloads in an audit package are proven, not just claimed: the package carries the sealed purge
manifest that lists each purged record (bytes as stored, with its inclusion proof against the package's
checkpoint), and the verifier fails, naming the file, when that manifest is dropped, changed, or does not
list a record marked purged — also when an insider holding the signing key re-signs the package manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from accessproof.audit.verify_package import verify_package
from tests.audit.test_package import read_zip
from tests.audit.test_verify_package import check, names_in, resign
from tests.audit.test_verify_package import demo as demo


@pytest.fixture(scope="module")
def purged(demo: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The sample package over a copy of the demo store after a purge far in the future, with one source of
    the sample's records under a legal hold, so the package holds both purged and kept payloads."""
    from accessproof.audit.package import build_package
    from accessproof.ledger import open_ledger
    from accessproof.ledger.retention import add_hold, purge
    from accessproof.store import open_store

    root = tmp_path_factory.mktemp("purged")
    store_dir = root / "store"
    shutil.copytree(demo.store_dir, store_dir)
    raws = sorted({r for it in demo.doc["items"] for r in it["raw_ids"]})
    store = open_store(store_dir)
    try:
        kept = store.query("SELECT source FROM raw_records WHERE raw_id = ?", [raws[0]])[0][0]
        ledger = open_ledger(store_dir, store.con)
        add_hold(ledger, reason="test: keep one source", by="test", source=kept)
        report = purge(ledger, ledger.payloads, now=datetime(2200, 1, 1, tzinfo=UTC))
        assert report.purge and report.held, "the purge must remove some payloads and keep others"
        result = build_package(store, root / "pkg.zip", sample=demo.sample)
    finally:
        store.close()
    files = read_zip(result.path)
    manifest = json.loads(files["manifest.json"])
    raw_items = [s for s in manifest["sealed"] if s["record_type"] == "raw"]
    gone = [s for s in raw_items if s["payload"] is None]
    present = [s for s in raw_items if s["payload"] is not None]
    assert gone and present, "the package must hold purged and kept payloads"
    return SimpleNamespace(path=result.path, result=result, files=files, manifest=manifest, gone=gone,
                           present=present)


def _with_manifest(files: dict[str, bytes], manifest: dict) -> dict[str, bytes]:
    return {**files, "manifest.json": json.dumps(manifest, indent=2, sort_keys=True).encode()}


def test_purged_records_are_proven_by_the_sealed_purge_manifest(demo: SimpleNamespace,
                                                                 purged: SimpleNamespace) -> None:
    report = verify_package(purged.path, demo.vkey)
    assert report.ok, report.failures
    said = [w for w in report.warnings if "its payload was purged under retention (listed in ledger/purges/" in w]
    assert len(said) == len(purged.gone)
    sealed = {s["payload"]: s for s in purged.manifest["sealed"] if s["record_type"] == "purge"}
    for item in purged.gone:
        assert item["gone"] == "purged"
        name = item["purged_by"]
        assert name.startswith("ledger/purges/") and name in purged.files and name in sealed
        body = json.loads(purged.files[name])
        assert [item["index"], "raw", item["record_id"]] in body["records"]
        # the purge manifest is the payload its own ledger entry seals, at the index the package names
        proof = json.loads(purged.files[sealed[name]["proof"]])
        entry = json.loads(base64.b64decode(proof["entry"]))
        assert entry["type"] == "purge" and proof["index"] == sealed[name]["index"]
        digest = hashlib.sha256(bytes.fromhex(entry["salt"]) + purged.files[name]).hexdigest()
        assert digest == entry["payload_sha256"]
        assert proof["tree_size"] == purged.manifest["log"]["tree_size"]
    for item in purged.present:
        assert "gone" not in item and "purged_by" not in item
    assert "purged_by" in purged.files["VERIFY.md"].decode() and "ledger/purges/" in purged.files["VERIFY.md"].decode()


def test_a_dropped_purge_manifest_is_named(demo: SimpleNamespace, purged: SimpleNamespace,
                                           tmp_path: Path) -> None:
    name = purged.gone[0]["purged_by"]
    files = {n: d for n, d in purged.files.items() if n != name}
    report = check(demo, tmp_path, files)
    assert f"{name}: listed in the manifest but missing from the package" in report.failures
    # re-signed so that the package manifest no longer lists it: the purge is still unproven
    report = check(demo, tmp_path, resign(demo, files), "resigned.zip")
    assert not report.ok and name in names_in(report), report.failures
    assert f"{name}: is missing: nothing proves raw {purged.gone[0]['record_id']} was purged" in report.failures


def test_a_changed_byte_in_the_purge_manifest_is_named(demo: SimpleNamespace, purged: SimpleNamespace,
                                                       tmp_path: Path) -> None:
    name = purged.gone[0]["purged_by"]
    data = bytearray(purged.files[name])
    data[data.index(b'"by"') + 1] ^= 0x01  # still JSON, now a different key
    files = {**purged.files, name: bytes(data)}
    report = check(demo, tmp_path, files)
    assert any(f.startswith(f"{name}: SHA-256 differs") for f in report.failures), report.failures
    report = check(demo, tmp_path, resign(demo, files), "resigned.zip")
    assert not report.ok and name in names_in(report), report.failures
    assert any(f.startswith(f"{name}: does not hash to the payload hash sealed") for f in report.failures)


def test_a_kept_record_marked_purged_is_named(demo: SimpleNamespace, purged: SimpleNamespace,
                                              tmp_path: Path) -> None:
    """An insider drops a kept payload and claims the purge manifest covers it: the manifest does not list it."""
    manifest = json.loads(purged.files["manifest.json"])
    victim = next(s for s in manifest["sealed"] if s["record_type"] == "raw" and s["payload"] is not None)
    raw_file, name = victim["payload"], purged.gone[0]["purged_by"]
    victim.update(payload=None, gone="purged", purged_by=name)
    files = {n: d for n, d in _with_manifest(purged.files, manifest).items() if n != raw_file}
    report = check(demo, tmp_path, resign(demo, files))
    assert report.failures == [f"{name}: does not list raw {victim['record_id']} (ledger index {victim['index']}) "
                               "as purged"]
    # with no purge manifest named at all
    del victim["purged_by"]
    files = {n: d for n, d in _with_manifest(purged.files, manifest).items() if n != raw_file}
    report = check(demo, tmp_path, resign(demo, files), "none.zip")
    assert report.failures == [f"{victim['proof']}: raw {victim['record_id']} is marked purged but names no sealed "
                               "purge manifest"]


def test_a_record_removed_from_the_purge_manifest_is_named(demo: SimpleNamespace, purged: SimpleNamespace,
                                                           tmp_path: Path) -> None:
    item = purged.gone[0]
    name = item["purged_by"]
    body = json.loads(purged.files[name])
    body["records"] = [r for r in body["records"] if r[0] != item["index"]]
    files = resign(demo, {**purged.files, name: json.dumps(body, separators=(",", ":")).encode()})
    report = check(demo, tmp_path, files)
    assert not report.ok and names_in(report) == {name}, report.failures
    assert any(f.startswith(f"{name}: does not hash to the payload hash sealed") for f in report.failures)
    assert f"{name}: is not a purge manifest proven in the ledger: nothing proves raw {item['record_id']} was " \
           "purged" in report.failures
    # and a proven manifest that does not list a record marked purged (another purge's file named) is named too
    other = json.loads(purged.files["manifest.json"])
    victim = next(s for s in other["sealed"] if s.get("purged_by") == name)
    victim["purged_by"] = "ledger/purges/other.json"
    body = {"by": "test", "purge_id": "other", "records": [], "time": "2200-01-01T00:00:00Z"}
    files = resign(demo, {**_with_manifest(purged.files, other), "ledger/purges/other.json": json.dumps(body).encode()})
    report = check(demo, tmp_path, files, "other.zip")
    assert report.failures == ["ledger/purges/other.json: is not a purge manifest proven in the ledger: nothing "
                               f"proves raw {victim['record_id']} was purged"]
