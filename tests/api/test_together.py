"""Deliveries that wait for the store are ingested together in one run; each still gets its own exact
accounting (read = accepted + duplicate + quarantined), its own set-aside records and its own record."""

from __future__ import annotations

import tempfile
from pathlib import Path

from accessproof.api import intake
from accessproof.sources.base import iter_json_records
from accessproof.store import open_store
from tests.conftest import dev_data


def _delivery(root: Path, delivery: str, lines: list[bytes], seen: list[str], refuse: bool = False) -> intake.Delivery:
    path = root / f"{delivery}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    name = intake.record_file("hook", "okta", delivery)
    return intake.Delivery(("okta", None, "[]"), name, delivery, lambda ing: iter_json_records(path, name),
                           guard=(lambda store: "refused for the test") if refuse else None,
                           after=lambda store, outcome: seen.append(outcome.delivery))


def test_three_deliveries_in_one_run_each_accounted(tmp_path):
    lines = [x for x in (dev_data() / "okta" / "panther-tests.jsonl").read_bytes().splitlines() if x.strip()]
    good = [x for x in lines if b'"published": "20' in x][:12]
    seen: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        a = _delivery(root, "a", [*good[:6], b'{"eventType": "x", "published": '], seen)
        b = _delivery(root, "b", good[4:10], seen)            # two records also in a: duplicates
        c = _delivery(root, "c", good[:2], seen, refuse=True)  # refused before anything is read
        s = open_store(tmp_path / "st")
        try:
            intake.ingest_together(s, [a, b, c], subjects=True)
            runs = s.query("SELECT read, accepted, duplicate, quarantined FROM ingest_runs")
            stored = s.query("SELECT count(*) FROM raw_records")[0][0]
        finally:
            s.close()
    ra, rb = a.result, b.result
    assert isinstance(ra, intake.Outcome) and isinstance(rb, intake.Outcome)
    assert (ra.summary.read, ra.summary.accepted, ra.summary.duplicate, ra.summary.quarantined) == (7, 6, 0, 1)
    assert (rb.summary.read, rb.summary.accepted, rb.summary.duplicate, rb.summary.quarantined) == (6, 4, 2, 0)
    assert ra.quarantine[0]["position"].startswith(a.name + ":") and "malformed JSON" in ra.quarantine[0]["reason"]
    assert c.result == "refused for the test"
    assert runs == [(13, 10, 2, 1)] and stored == 10  # one run for the two taken
    assert ra.summary.run_id == rb.summary.run_id
    assert seen == ["a", "b"] and ra.subjects
