"""``verify-package``: a package built from the demo verifies offline; each kind of tampering fails with a line
naming the file (or item) and what is wrong — a changed byte in any kind of file, a removed file, an added
file, two proofs swapped, a wrong key — and so do forgeries by someone who holds the signing key and
re-signs the manifest (then only the proofs, the population and the sealed run can catch them). The
verifier ships alone: it imports nothing but the standard library and ``cryptography``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from accessproof.audit.verify_package import Report, verify_package
from tests.audit.test_package import CONTROL, build_demo, read_zip

runner = CliRunner()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return build_demo(tmp_path_factory)


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def resign(demo: SimpleNamespace, files: dict[str, bytes]) -> dict[str, bytes]:
    """What an insider holding the signing key could do: list the files as they now are and sign again."""
    from accessproof.ledger.api import load_signer

    signer = load_signer(demo.store_dir)
    assert signer is not None
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()
                         if n not in ("manifest.json", "manifest.sig")}
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    note = signer.sign(f"accessproof.package/1\nmanifest.json sha256 {hashlib.sha256(data).hexdigest()}\n")
    return {**files, "manifest.json": data, "manifest.sig": note.encode()}


def check(demo: SimpleNamespace, tmp_path: Path, files: dict[str, bytes], name: str = "t.zip") -> Report:
    return verify_package(write_zip(tmp_path / name, files), demo.vkey)


def names_in(report: Report) -> set[str]:
    return {f.split(": ", 1)[0] for f in report.failures}


def _kinds(names: list[str]) -> dict[str, str]:
    """One file of each kind: same folder shape and extension once ids are blanked out."""
    out: dict[str, str] = {}
    for n in sorted(names):
        shape = re.sub(r"[0-9a-f]{16,}|item-\d+", "*", n)
        out.setdefault(shape, n)
    return out


# ---------------------------------------------------------------- the good case


def test_packages_verify(demo: SimpleNamespace) -> None:
    for kind, path in demo.packages.items():
        report = verify_package(path, demo.vkey)
        assert report.ok, (kind, report.failures)
        assert not report.warnings, report.warnings
        assert report.counts["inclusion proofs"] == demo.results[kind].proofs > 0
        assert report.counts["files"] == demo.results[kind].files - 2
    sample = verify_package(demo.packages["sample"], demo.vkey)
    assert sample.counts["consistency proofs"] == 1 and sample.counts["population keys"] == demo.population.count


def test_unpinned_key_warns(demo: SimpleNamespace, tmp_path: Path) -> None:
    report = verify_package(demo.packages["control"])
    assert report.ok and any("key/ledger.vkey" in w and "--key" in w for w in report.warnings)
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(demo.packages["control"]) as z:
        z.extractall(folder)
    assert verify_package(folder, demo.vkey).ok  # an unpacked package verifies the same way


# ---------------------------------------------------------------- tampering, each named


def test_a_changed_byte_in_any_kind_of_file_is_named(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    kinds = _kinds([n for n in files if n not in ("manifest.json", "manifest.sig")])
    assert len(kinds) >= 20, sorted(kinds)
    for name in kinds.values():
        data = bytearray(files[name])
        data[len(data) // 2] ^= 0x01
        report = check(demo, tmp_path, {**files, name: bytes(data)})
        assert not report.ok and name in names_in(report), (name, report.failures)
        assert any(f.startswith(f"{name}: SHA-256 differs") for f in report.failures)


def test_a_changed_manifest_or_signature_is_named(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    manifest = bytearray(files["manifest.json"])
    manifest[manifest.index(b'"created"') + 15] ^= 0x01  # a digit of the creation time: still JSON
    report = check(demo, tmp_path, {**files, "manifest.json": bytes(manifest)})
    assert "manifest.sig: signs a different manifest (the manifest was changed)" in report.failures
    sig = files["manifest.sig"].decode()
    cut = sig.rindex(" ") + 10
    forged = sig[:cut] + ("A" if sig[cut] != "A" else "B") + sig[cut + 1:]
    report = check(demo, tmp_path, {**files, "manifest.sig": forged.encode()})
    assert [f for f in report.failures if f.startswith("manifest.sig: manifest signature rejected")], report.failures


def test_a_removed_file_is_named(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    for name in ("population/proof.json", "workpaper/index.html", next(n for n in files if n.endswith("/raw.json"))):
        report = check(demo, tmp_path, {n: d for n, d in files.items() if n != name})
        assert f"{name}: listed in the manifest but missing from the package" in report.failures, report.failures
    report = check(demo, tmp_path, {n: d for n, d in files.items() if n != "manifest.sig"})
    assert "manifest.sig: missing: the manifest is not signed" in report.failures


def test_an_added_file_is_named(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    report = check(demo, tmp_path, {**files, "evidence/extra/raw.json": b"{}"})
    assert report.failures == ["evidence/extra/raw.json: in the package but not in the manifest (an added file)"]
    with zipfile.ZipFile(write_zip(tmp_path / "dup.zip", files), "a") as z, pytest.warns(UserWarning):
        z.writestr("items.csv", b"n,key\n")  # a second copy under the same name
    assert "items.csv: appears twice in the zip" in verify_package(tmp_path / "dup.zip", demo.vkey).failures


def test_swapped_proofs_are_named(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    a, b = sorted(n for n in files if n.startswith("evidence/") and n.endswith("/proof.json"))[:2]
    swapped = {**files, a: files[b], b: files[a]}
    report = check(demo, tmp_path, swapped)
    assert {a, b} <= names_in(report)
    # even with the manifest listed afresh and signed again, the proofs no longer fit their records
    report = check(demo, tmp_path, resign(demo, swapped), "resigned.zip")
    assert {a, b} <= names_in(report), report.failures
    assert all("the manifest says" in f for f in report.failures if f.startswith((a, b)))


def test_a_wrong_key_is_named(demo: SimpleNamespace) -> None:
    from accessproof.ledger.note import Signer

    other = Signer.generate(demo.vkey.split("+")[0]).verifier  # same log name, another key
    report = verify_package(demo.packages["control"], str(other))
    assert not report.ok
    assert {"key/ledger.vkey", "manifest.sig", "ledger/checkpoint.note"} <= names_in(report), report.failures
    bad = verify_package(demo.packages["control"], "not-a-key")
    assert names_in(bad) == {"key/ledger.vkey", "--key"}


def test_forgeries_with_the_signing_key_are_still_caught(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    raw = next(n for n in files if n.startswith("evidence/") and n.endswith("/raw.json"))
    report = check(demo, tmp_path, resign(demo, {**files, raw: files[raw].replace(b'"', b"'", 1)}))
    assert [f for f in report.failures if f.startswith(f"{raw}: does not hash to the payload hash sealed")]

    proof = json.loads(files["ledger/consistency.json"])
    proof["consistency_path"][0] = proof["consistency_path"][1]
    report = check(demo, tmp_path, resign(demo, {**files, "ledger/consistency.json": json.dumps(proof).encode()}))
    assert [f for f in report.failures if f.startswith("ledger/consistency.json: consistency from size")]

    sample = json.loads(files["sample/sample.json"])
    sample["population"]["count"] += 1
    report = check(demo, tmp_path, resign(demo, {**files, "sample/sample.json": json.dumps(sample).encode()}))
    assert [f for f in report.failures if f.startswith("sample/sample.json: population count")], report.failures

    sample = json.loads(files["sample/sample.json"])
    sample["items"][0]["key"] = "trigger:termination:invented:0"
    report = check(demo, tmp_path, resign(demo, {**files, "sample/sample.json": json.dumps(sample).encode()}))
    assert "sample/sample.json: sampled item 'trigger:termination:invented:0' is not in the population" in report.failures

    population = json.loads(files["population/population.json"])
    population["keys"] = population["keys"][1:]
    population["count"] -= 1
    report = check(demo, tmp_path, resign(demo, {**files, "population/population.json": json.dumps(population).encode()}))
    assert [f for f in report.failures if f.startswith("population/population.json: does not hash")]

    results = f"controls/{CONTROL}/results.json"
    rows = json.loads(files[results])
    rows[0]["status"] = "ok" if rows[0]["status"] != "ok" else "alarm"
    report = check(demo, tmp_path, resign(demo, {**files, results: json.dumps(rows).encode()}))
    assert f"{results}: rows do not hash to the sealed run's results_digest ({CONTROL})" in report.failures


def test_a_manifest_of_the_wrong_shape_is_a_failure_not_a_crash(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    manifest = json.loads(files["manifest.json"])
    for field in ("files", "log", "sealed", "unsealed", "consistency", "population", "controls"):
        for value in (5, "x", [1], {"a": 1}, [{"proof": 3}]):
            forged = {**files, "manifest.json": json.dumps({**manifest, field: value}).encode()}
            report = check(demo, tmp_path, forged if field == "files" else resign(demo, forged))
            assert all(isinstance(f, str) and "\n" not in f for f in report.failures)
            if field in ("files", "log", "sealed", "population"):
                assert not report.ok, (field, value)


def test_not_a_package(demo: SimpleNamespace, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    report = verify_package(junk, demo.vkey)
    assert not report.ok and len(report.failures) == 1 and "not a readable zip" in report.failures[0]
    half = tmp_path / "half.zip"
    half.write_bytes(demo.packages["control"].read_bytes()[:5000])
    assert not verify_package(half, demo.vkey).ok
    report = verify_package(write_zip(tmp_path / "empty.zip", {"readme.txt": b"hi"}), demo.vkey)
    assert report.failures == ["manifest.json: missing"]


# ---------------------------------------------------------------- the verifier ships alone


def test_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    import accessproof.audit.verify_package as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}, roots


def test_the_included_verify_py_runs_without_accessproof(demo: SimpleNamespace, tmp_path: Path) -> None:
    files = read_zip(demo.packages["sample"])
    script = tmp_path / "verify.py"
    script.write_bytes(files["verify.py"])
    blocked = ("import runpy, sys; sys.modules['accessproof'] = None; sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    ok = subprocess.run([sys.executable, "-c", blocked, str(script), str(demo.packages["sample"]), "--key", demo.vkey],
                        capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok:"), ok.stderr
    data = bytearray(files["items.csv"])
    data[3] ^= 0x01
    bad = write_zip(tmp_path / "bad.zip", {**files, "items.csv": bytes(data)})
    fail = subprocess.run([sys.executable, "-c", blocked, str(script), str(bad), "--key", demo.vkey],
                          capture_output=True, text=True, cwd=tmp_path)
    assert fail.returncode == 1 and "FAIL items.csv: SHA-256 differs" in fail.stderr


def test_the_steps_in_verify_md_work_by_hand(demo: SimpleNamespace, tmp_path: Path) -> None:
    """The documented by-hand check (step 4's Python, step 1's SHA256SUMS) holds on a real package."""
    folder = tmp_path / "pkg"
    with zipfile.ZipFile(demo.packages["sample"]) as z:
        z.extractall(folder)
    guide = (folder / "VERIFY.md").read_text(encoding="utf-8")
    snippet = guide[guide.index("    import base64"):guide.index("The entry's `id`")]
    raw = sorted(folder.glob("evidence/*/raw.json"))[0]
    code = "\n".join(line[4:] for line in snippet.splitlines()).replace("<raw id>", raw.parent.name)
    subprocess.run([sys.executable, "-c", code], cwd=folder, check=True)
    broken = code.replace('raw = open(', 'raw = b"x" + open(')
    assert subprocess.run([sys.executable, "-c", broken], cwd=folder, capture_output=True).returncode != 0
    sums = dict(line.split("  ", 1)[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sums and all(manifest["files"][name]["sha256"] == digest for name, digest in sums.items())
    assert set(manifest["files"]) - set(sums) == {"SHA256SUMS"}


def test_cli_verify_package(demo: SimpleNamespace, tmp_path: Path) -> None:
    from accessproof.audit.package_commands import build_app

    app = build_app()
    ok = runner.invoke(app, ["verify-package", str(demo.packages["sample"]), "--key", demo.vkey])
    assert ok.exit_code == 0 and ok.output.startswith("ok:"), ok.output
    files = read_zip(demo.packages["sample"])
    bad = write_zip(tmp_path / "bad.zip", {n: d for n, d in files.items() if n != "VERIFY.md"})
    out = runner.invoke(app, ["verify-package", str(bad), "--key", demo.vkey])
    assert out.exit_code == 1 and "FAIL VERIFY.md: listed in the manifest but missing" in out.output
    missing = runner.invoke(app, ["verify-package", str(tmp_path / "absent.zip")])
    assert missing.exit_code == 2 and "no such file" in missing.output
