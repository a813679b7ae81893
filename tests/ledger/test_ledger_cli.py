"""The ledger CLI, checked by an independent verifier.

The commands run in subprocesses, and the RFC 9162 proof checks and the C2SP signed-note check below
import nothing from accessproof: they are written from the specifications, structured as the inverse of
the RFC's recursive PATH/SUBPROOF definitions (not the bit-walking algorithm the package uses), so one bug
cannot hide in both. Each test runs against a DuckDB store and a PostgreSQL store (the test harness for
those lives in tests/store).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.store.conftest import db_execute, pg_admin, schema_url

CLI = "from accessproof.ledger.commands import build_app; build_app()()"
SEAL = """
import sys
from datetime import UTC, datetime, timedelta
from accessproof.ledger import open_ledger, SealRecord
from accessproof.store.schema import create_table_sql
led = open_ledger(sys.argv[1])
start, n = int(sys.argv[2]), int(sys.argv[3])
recs = [SealRecord("raw", f"raw-{i}", "okta:acme", datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
                   f"payload {i}".encode(), kind="event") for i in range(start, start + n)]
conn = led.storage.conn
pg = type(conn).__module__.startswith("psycopg")
if not pg:
    conn.execute(create_table_sql("raw_records"))
with led.storage.transaction():
    (conn.cursor() if pg else conn).executemany(
        "INSERT INTO raw_records (raw_id, data) VALUES (%s, %s)" if pg else "INSERT INTO raw_records (raw_id, data) VALUES (?, ?)",
        [[r.record_id, r.payload] for r in recs])
    led.seal(recs)
led.close()
"""


# -- independent verifier -----------------------------------------------------------------------------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Undo PATH(m, D[n]): the last path element is the sibling at the top of the tree."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    if size == 1:
        if path:
            raise ValueError("path too long")
        return leaf
    if not path:
        raise ValueError("path too short")
    k = _split(size)
    top, rest = path[-1], path[:-1]
    if index < k:
        return _node(root_from_path(index, k, leaf, rest), top)
    return _node(top, root_from_path(index - k, size - k, leaf, rest))


def roots_from_consistency(m: int, n: int, proof: list[bytes], old_root: bytes) -> tuple[bytes, bytes]:
    """Undo PROOF(m, D[n]) = SUBPROOF(m, D[n], true); returns (old root, new root) it implies."""

    def sub(m: int, n: int, p: list[bytes], whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            if whole:
                if p:
                    raise ValueError("proof too long")
                return old_root, old_root
            if len(p) != 1:
                raise ValueError("proof has the wrong length")
            return p[0], p[0]
        if not p:
            raise ValueError("proof too short")
        k = _split(n)
        last, rest = p[-1], p[:-1]
        if m <= k:
            old, new = sub(m, k, rest, whole)
            return old, _node(new, last)
        old, new = sub(m - k, n - k, rest, False)
        return _node(last, old), _node(last, new)

    if not 0 < m < n:
        raise ValueError("only 0 < m < n is checked here")
    return sub(m, n, proof, True)


def open_signed_note(note: str, vkey: str) -> str:
    """C2SP signed-note: return the text if the key ``vkey`` signed it, else raise."""
    name, hexid, b64 = vkey.strip().split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33, "not an Ed25519 verifier key"
    key_id = _h(name.encode() + b"\n" + raw)[:4]
    assert key_id.hex() == hexid, "verifier key hash mismatch"
    text, _, sigs = note.rpartition("\n\n")
    text += "\n"
    for line in sigs.rstrip("\n").split("\n"):
        dash, signer, sig_b64 = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(sig_b64)
        if signer == name and blob[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], text.encode())  # raises if bad
            return text
    raise ValueError("no signature by the expected key")


def checkpoint_fields(text: str) -> tuple[str, int, bytes]:
    origin, size, root, end = text.split("\n")
    assert end == ""
    return origin, int(size), base64.b64decode(root)


# -- harness ------------------------------------------------------------------------------------------


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def seal(store: str, start: int, n: int) -> None:
    subprocess.run([sys.executable, "-c", SEAL, store, str(start), str(n)], check=True)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A store location once per backend: a DuckDB directory, or a fresh PostgreSQL schema (dropped after)
    with its key files under a home directory of its own (``ACCESSPROOF_HOME``)."""
    root = tmp_path_factory.mktemp("cli")
    if request.param == "duckdb":
        yield str(root / "store")
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ACCESSPROOF_HOME", str(root / "home"))
        yield schema_url(schema)
    admin = pg_admin()
    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.close()


def home(location: str) -> Path:
    """Where the store's key files are: the directory, or (PostgreSQL, as documented) a directory per
    server, database and schema under $ACCESSPROOF_HOME/postgres."""
    if not location.startswith("postgresql://"):
        return Path(location)
    schema = location.rsplit("%3D", 1)[1]
    return Path(os.environ["ACCESSPROOF_HOME"]) / "postgres" / f"127.0.0.1-5432-test-{schema}"


def run_sql(location: str, *statements: str) -> list[tuple]:
    """Run SQL on the store behind accessproof's back; returns the last statement's rows."""
    if location.startswith("postgresql://"):
        con = pg_admin()
        con.execute(f'SET search_path TO "{location.rsplit("%3D", 1)[1]}"')
    else:
        con = duckdb.connect(str(Path(location) / "accessproof.duckdb"))
    rows: list[tuple] = []
    try:
        for sql in statements:
            rows = db_execute(con, sql)
    finally:
        con.close()
    return rows


@pytest.fixture(scope="module")
def store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    vkey = run("init", "--store", backend).stdout.strip()
    seal(backend, 0, 300)
    run("ledger", "checkpoint", "--store", backend)
    seal(backend, 300, 333)
    run("ledger", "checkpoint", "--store", backend, "--out", str(home(backend).parent / "exported.txt"))
    return backend, vkey


def test_init_key_file(store: tuple[str, str]) -> None:
    path, vkey = store
    key = home(path) / "keys" / "ledger.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_text().startswith("PRIVATE+KEY+accessproof.local/")
    assert run("ledger", "key", "--store", path).stdout.strip() == vkey


@pytest.mark.parametrize("ref", ["0", "1", "255", "256", "299", "300", "632", "raw-17", "raw-512"])
def test_proof_verifies_independently(store: tuple[str, str], ref: str) -> None:
    path, vkey = store
    out = json.loads(run("ledger", "proof", ref, "--store", path).stdout)
    entry = base64.b64decode(out["entry"])
    assert out["leaf_hash"] == _h(b"\x00" + entry).hex()
    record = json.loads(entry)
    if ref.startswith("raw-"):
        assert record["id"] == ref
    else:
        assert out["index"] == int(ref)
    origin, size, root = checkpoint_fields(open_signed_note(out["checkpoint"], vkey))
    assert origin == vkey.split("+")[0] and size == out["tree_size"] == 633
    path_hashes = [base64.b64decode(p) for p in out["inclusion_path"]]
    assert root_from_path(out["index"], size, bytes.fromhex(out["leaf_hash"]), path_hashes) == root
    # the salted payload hash in the entry matches the payload we sealed
    payload = f"payload {record['id'].split('-')[1]}".encode()
    assert hashlib.sha256(bytes.fromhex(record["salt"]) + payload).hexdigest() == record["payload_sha256"]
    with pytest.raises(ValueError):  # and a different index does not verify
        if root_from_path(out["index"] ^ 1, size, bytes.fromhex(out["leaf_hash"]), path_hashes) != root:
            raise ValueError


def test_proof_against_an_older_checkpoint(store: tuple[str, str]) -> None:
    path, vkey = store
    out = json.loads(run("ledger", "proof", "123", "--size", "300", "--store", path).stdout)
    _, size, root = checkpoint_fields(open_signed_note(out["checkpoint"], vkey))
    assert size == 300
    leaf = bytes.fromhex(out["leaf_hash"])
    assert root_from_path(123, 300, leaf, [base64.b64decode(p) for p in out["inclusion_path"]]) == root
    bad = run("ledger", "proof", "123", "--size", "299", "--store", path, check=False)
    assert bad.returncode != 0 and bad.stderr.startswith("error: no checkpoint at size 299")


def test_consistency_verifies_independently(store: tuple[str, str]) -> None:
    path, vkey = store
    out = json.loads(run("ledger", "consistency", "300", "633", "--store", path).stdout)
    _, old_size, old_root = checkpoint_fields(open_signed_note(out["old_checkpoint"], vkey))
    _, new_size, new_root = checkpoint_fields(open_signed_note(out["new_checkpoint"], vkey))
    assert (old_size, new_size) == (out["old_size"], out["new_size"]) == (300, 633)
    assert base64.b64decode(out["old_root"]) == old_root and base64.b64decode(out["new_root"]) == new_root
    proof = [base64.b64decode(p) for p in out["consistency_path"]]
    assert roots_from_consistency(300, 633, proof, old_root) == (old_root, new_root)
    for m in (1, 7, 256, 512):
        o = json.loads(run("ledger", "consistency", str(m), "--store", path).stdout)
        assert o["new_size"] == 633
        got = roots_from_consistency(
            m, 633, [base64.b64decode(p) for p in o["consistency_path"]], base64.b64decode(o["old_root"])
        )
        assert got == (base64.b64decode(o["old_root"]), new_root)


def test_verify_and_errors(store: tuple[str, str], tmp_path: Path) -> None:
    path, vkey = store
    ok = run("verify", "--store", path, "--key", vkey, "--against", str(home(path).parent / "exported.txt"))
    assert ok.stdout.startswith("ok: 633 entries, 2 checkpoints, 633 payloads checked")
    missing = run("ledger", "proof", "no-such-record", "--store", path, check=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    nostore = run("verify", "--store", str(tmp_path / "none"), check=False)
    assert nostore.returncode == 2 and nostore.stderr.startswith("error: no store")


def test_verify_names_the_first_bad_index(store_url: str, tmp_path: Path) -> None:
    store = store_url
    run("init", "--store", store)
    seal(store, 0, 50)
    exported = run("ledger", "checkpoint", "--store", store).stdout
    (tmp_path / "cp.txt").write_text(exported)
    run_sql(store, "UPDATE raw_records SET data = 'payload 21!'::BLOB WHERE raw_id = 'raw-21'")
    bad = run("verify", "--store", store, check=False)
    assert bad.returncode == 1 and "first bad index 21" in bad.stderr
    run_sql(store, "UPDATE raw_records SET data = 'payload 21'::BLOB WHERE raw_id = 'raw-21'",
           "DELETE FROM ledger_entries WHERE idx >= 40", "DELETE FROM ledger_checkpoints")
    rolled = run("verify", "--store", store, "--against", str(tmp_path / "cp.txt"), check=False)
    assert rolled.returncode == 1 and "first bad index 40" in rolled.stderr


def test_retention_commands(store_url: str) -> None:
    store = store_url
    run("init", "--store", store)
    seal(store, 0, 20)  # 2024-01-01, provisioning logs: 3 years
    held = run(
        "retention",
        "hold",
        "add",
        "--store",
        store,
        "--source",
        "okta:*",
        "--to",
        "2024-01-01T00:05:00Z",
        "--reason",
        "case 9",
        "--by",
        "legal",
    )
    hold_id = held.stdout.split(":")[0]
    assert hold_id.startswith("hold-")
    assert hold_id in run("retention", "hold", "list", "--store", store).stdout
    dry = run("retention", "purge", "--dry-run", "--now", "2027-06-01T00:00:00Z", "--store", store)
    assert dry.stdout.startswith("would purge 15 payloads") and "5 kept under hold" in dry.stdout
    done = run("retention", "purge", "--now", "2027-06-01T00:00:00Z", "--store", store)
    assert done.stdout.startswith("purged 15 payloads") and "compacted" in done.stdout
    run("retention", "hold", "release", hold_id, "--reason", "closed", "--by", "legal", "--store", store)
    assert "no holds" in run("retention", "hold", "list", "--store", store).stdout
    assert "released by legal" in run("retention", "hold", "list", "--all", "--store", store).stdout
    assert run("verify", "--store", store).stdout.startswith("ok:")
    assert run_sql(store, "SELECT count(*) FROM raw_records WHERE data IS NULL") == [(15,)]
