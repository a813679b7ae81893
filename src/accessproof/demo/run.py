"""The main job on the demo organisation: simulate, ingest, seal, link, test controls, report.

Each step is a library call that also works on a customer's own exports; ``run_demo`` only strings them
together, and reports progress through a callback so the CLI can draw a bar.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accessproof.demo.simulate import simulate
from accessproof.ingest import IngestSummary, ingest_paths
from accessproof.ledger import init_store
from accessproof.store import Store, open_store

#: (label, source type, path inside the simulator's output, options, source name) in ingest order:
#: governance first, so that linking has what the events point at.
DEMO_FEEDS: list[tuple[str, str, str, dict[str, Any], str | None]] = [
    ("HR workers", "csv", "hr/workers.csv", {"mapping": "hr_workers"}, None),
    ("HR events", "csv", "hr/events.csv", {"mapping": "hr_events"}, None),
    ("QMS exceptions", "csv", "qms/exceptions.csv", {"mapping": "qms_exceptions"}, None),
    ("QMS training", "csv", "qms/training.csv", {"mapping": "qms_training"}, None),
    ("QMS suppliers", "csv", "qms/suppliers.csv", {"mapping": "qms_suppliers"}, None),
    ("QMS changes", "csv", "qms/changes.csv", {"mapping": "qms_changes"}, None),
    ("ServiceNow requests", "servicenow", "servicenow/sc_req_item.json", {}, "servicenow:acme"),
    ("ServiceNow approvals", "servicenow", "servicenow/sysapproval_approver.json", {}, "servicenow:acme"),
    ("Okta System Log", "okta", "okta/system_log.json", {}, "okta:acme"),
    ("AWS CloudTrail", "cloudtrail", "cloudtrail", {}, None),
    ("GitHub audit log", "github", "github/audit_log.json", {}, None),
]

Progress = Callable[[str, float], None]  # (step description, fraction done 0..1)


@dataclass
class DemoResult:
    out: Path
    data: Path
    store_dir: Path
    ingests: list[tuple[str, IngestSummary]] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        keys = ("read", "accepted", "duplicate", "quarantined")
        return {k: sum(getattr(s, k) for _, s in self.ingests) for k in keys}


def ingest_demo(store: Store, data: Path, progress: Progress | None = None, *, seal: bool = True
                ) -> list[tuple[str, IngestSummary]]:
    """Ingest every export the simulator wrote, in the vendors' formats, through the one path in."""
    done = []
    for i, (label, source_type, rel, options, source_name) in enumerate(DEMO_FEEDS):
        if progress:
            progress(f"ingest {label}", i / len(DEMO_FEEDS))
        summary = ingest_paths(store, source_type, [data / rel], options=options, source_name=source_name,
                               seal=seal)
        done.append((label, summary))
    return done


def build_demo_store(out: Path, *, people: int = 200, months: int = 6, seed: int = 7,
                     progress: Progress | None = None, seal: bool = True, **simulate_kw: Any) -> DemoResult:
    """Simulate the company into ``out/data`` and ingest it into a fresh store at ``out/store``.

    With ``seal`` (the default) the store gets a signing key first and every record is sealed as it is
    stored; ``seal=False`` builds an unsealed store (tests of what a report says without a ledger)."""
    out = Path(out)
    data, store_dir = out / "data", out / "store"
    result = DemoResult(out=out, data=data, store_dir=store_dir)
    t = time.perf_counter()
    if progress:
        progress("simulate the company", 0.0)
    if data.exists():
        shutil.rmtree(data)
    simulate(people, months, seed, data, **simulate_kw)
    result.steps["simulate"] = time.perf_counter() - t
    if store_dir.exists():
        shutil.rmtree(store_dir)
    t = time.perf_counter()
    if seal:
        ledger, verifier = init_store(store_dir)  # a signing key first, so every ingest ends in a checkpoint
        ledger.close()
        result.summary["verifier_key"] = str(verifier)
    store = open_store(store_dir)
    try:
        result.ingests = ingest_demo(store, data, progress, seal=seal)
    finally:
        store.close()
    result.steps["ingest"] = time.perf_counter() - t
    return result


def run_demo(out: Path = Path("accessproof-demo"), *, people: int = 200, months: int = 6, seed: int = 7,
             progress: Progress | None = None) -> DemoResult:
    """The main job: everything the product does, on the simulated company, with a report at the end."""
    from accessproof.controls import assess
    from accessproof.controls.score import score
    from accessproof.demo.report import write_report
    from accessproof.evidence import seal_control_runs
    from accessproof.linking.link import link_all

    result = build_demo_store(out, people=people, months=months, seed=seed, progress=progress)
    store = open_store(result.store_dir)
    try:
        def step(name: str, fraction: float, fn: Callable[[], Any]) -> Any:
            if progress:
                progress(name, fraction)
            t = time.perf_counter()
            value = fn()
            result.steps[name] = time.perf_counter() - t
            return value

        result.summary["link"] = step("link approvals to events", 0.85, lambda: link_all(store))
        assessment = step("test controls", 0.9, lambda: assess(store))
        step("seal control results", 0.93, lambda: seal_control_runs(store, assessment.runs))
        result.summary["controls"] = {"assessment_id": assessment.assessment_id, "counts": assessment.counts(),
                                      "controls": len(assessment.runs), "errors": len(assessment.errors)}
        result.summary["score"] = score(store, result.data / "ground_truth.json")
        html = step("write the report", 0.96, lambda: write_report(store, result, out / "report"))
        result.summary["report"] = str(html)
    finally:
        store.close()
    return result
