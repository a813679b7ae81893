"""Control runs sealed by ``evidence.seal_control_runs`` are verifiable: their payloads are kept and rehashed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from accessproof.evidence import seal_control_runs
from accessproof.ledger import Ledger, verify_ledger
from tests.store.conftest import db_execute

from .conftest import T0, raw_records, seal_raw


def _runs(n: int) -> list[dict]:
    return [
        {"run_id": f"run-{i}", "control_id": "AC-2", "finished": T0, "status": "pass", "population": 10 + i}
        for i in range(n)
    ]


def test_control_runs_are_checked_and_a_changed_byte_fails(store_url: str, any_ledger: Ledger) -> None:
    ledger = any_ledger
    seal_raw(ledger, raw_records(5))
    conn = ledger.storage.conn
    first = seal_control_runs(SimpleNamespace(dir=store_url, con=conn), _runs(3))  # type: ignore[arg-type]
    assert first == 5
    report = verify_ledger(ledger, payloads=ledger.payloads)
    assert report.ok, report.summary()
    assert (report.payloads_checked, report.payloads_unchecked) == (8, 0)
    assert ledger.latest_checkpoint().size == 8  # signed after sealing

    data = bytes(
        db_execute(
            conn, "SELECT data FROM ledger_payloads WHERE record_type = 'control_result' AND record_id = 'run-1'"
        )[0][0]
    )
    changed = data.replace(b'"pass"', b'"fail"')
    assert changed != data and len(changed) == len(data)
    db_execute(
        conn,
        "UPDATE ledger_payloads SET data = ? WHERE record_type = 'control_result' AND record_id = 'run-1'",
        [changed],
    )
    report = verify_ledger(ledger, payloads=ledger.payloads)
    assert not report.ok and report.first_bad_index == first + 1
    assert (
        report.first_problem().message == "payload of control_result 'run-1' does not match its sealed hash"
    )
    assert "first bad index 6" in report.summary()


def test_deleted_control_run_payload_fails(store_dir: Path, ledger: Ledger) -> None:
    conn = ledger.storage.conn
    first = seal_control_runs(SimpleNamespace(dir=store_dir, con=conn), _runs(2))  # type: ignore[arg-type]
    conn.execute("DELETE FROM ledger_payloads WHERE record_id = 'run-0'")
    report = verify_ledger(ledger, payloads=ledger.payloads)
    assert report.first_bad_index == first
    assert "missing and no purge manifest lists it" in report.first_problem().message
