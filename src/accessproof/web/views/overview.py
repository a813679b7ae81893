"""The overview (controls by status and framework, findings by severity and age, expiring exceptions, last
assessment and checkpoint, evidence freshness, trends), the assessments page (full, partial and re-test runs,
filtered by kind) and the sources page (quality and quarantine)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from accessproof.api.auth import Principal
from accessproof.api.deps import using_store
from accessproof.web import charts, data
from accessproof.web.charts import COLORS, Segment, Series
from accessproof.web.pages import reader, render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, _: Principal = Depends(reader)) -> HTMLResponse:
    with using_store(request) as store:
        o = data.overview(store)
    return render(request, "overview.html", o=o, page="overview", figures=_figures(o))


def _figures(o: dict) -> dict:
    """The overview's charts (inline SVG)."""
    st = o["states"]
    status_colors = {"passing": COLORS["ok"], "failing": COLORS["alarm"], "error": COLORS["error"],
                     "not run": COLORS["not run"]}
    total = sum(st.values())
    by_status = charts.donut([Segment(k, v, status_colors[k]) for k, v in st.items()],
                             f"{st['passing']}/{total}", "controls passing")
    by_framework = charts.stacked_bars(
        [(f["name"], [Segment(k, f[k], status_colors[k]) for k in status_colors]) for f in o["frameworks"]
         if f["controls"]], title="Controls by framework and status", width=520, label_w=120)
    sev_age = o["by_severity_age"]
    age_colors = ["#fca5a5", "#f87171", "#dc2626", "#7f1d1d"]
    by_sev = charts.stacked_bars(
        [(s.capitalize(), [Segment(b, n, age_colors[i]) for i, (b, n) in enumerate(ages.items())])
         for s, ages in sev_age.items()], title="Open findings by severity and age", width=520, label_w=90)
    age_legend = charts.legend([(b, age_colors[i]) for i, (b, _) in enumerate(data.AGE_BUCKETS)])
    trend = o["trend"]
    labels = [data.utc(a["started"]).strftime("%d %b %H:%M") if data.utc(a["started"]) else "?" for a in trend]
    pass_rate = charts.line_chart(labels, [Series("pass rate", COLORS["pass"], [a["pass_rate"] for a in trend])],
                                  title="Pass rate per assessment", unit="%", y_max=100, width=400, height=210)
    alarms = charts.line_chart(labels, [Series("findings raised", COLORS["open"], [int(a["alarm"] or 0)
                                                                                  for a in trend])],
                               title="Findings raised per assessment", width=400, height=210)
    lat = o["latency"]
    latency = charts.line_chart([m["month"] for m in lat],
                                [Series(f"p{q}", COLORS[f"p{q}"], [m[f"p{q}"] for m in lat]) for q in (50, 90, 99)],
                                title="Revocation latency percentiles by month (hours)", unit=" h", width=400,
                                height=210)
    return {"by_status": by_status, "by_framework": by_framework, "by_severity": by_sev, "age_legend": age_legend,
            "status_legend": charts.legend([(k, c) for k, c in status_colors.items()]),
            "pass_rate": pass_rate, "alarms": alarms, "latency": latency,
            "latency_legend": charts.legend([(f"p{q}", COLORS[f"p{q}"]) for q in (50, 90, 99)])}


ASSESSMENT_LABELS = {"full": "Full assessments", "partial": "Partial runs", "retest": "Event-driven re-tests"}
SHOWN_ASSESSMENTS = 200


@router.get("/assessments", response_class=HTMLResponse)
def assessments(request: Request, kind: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    if kind not in data.ASSESSMENT_KINDS:
        kind = ""
    with using_store(request) as store:
        every = data.assessments(store)
    counts = Counter(a["kind"] for a in every)
    rows = [a for a in reversed(every) if not kind or a["kind"] == kind]
    return render(request, "assessments.html", page="assessments", rows=rows[:SHOWN_ASSESSMENTS], total=len(rows),
                  kind=kind, kinds=data.ASSESSMENT_KINDS, labels=ASSESSMENT_LABELS, counts=counts)


@router.get("/sources", response_class=HTMLResponse)
def sources(request: Request, _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof import queries

    with using_store(request) as store:
        as_of = data.utc(store.query("SELECT max(time) FROM events")[0][0])
        quality = data.freshness(store, as_of)
        qcols, qrows = queries.quarantine_summary(store)
        counts = queries.counts(store)
        runs = store.query_dicts("""
            SELECT source_type, count(*) AS runs, max(finished) AS last_ingest, sum(read) AS read,
                   sum(accepted) AS accepted, sum(duplicate) AS duplicate, sum(quarantined) AS quarantined
            FROM ingest_runs GROUP BY source_type ORDER BY source_type""")
    quarantine = [dict(zip(qcols, r, strict=True)) for r in qrows]
    return render(request, "sources.html", page="sources", quality=quality, quarantine=quarantine, counts=counts,
                  runs=runs, as_of=as_of)
