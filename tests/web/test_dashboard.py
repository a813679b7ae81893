"""The dashboard in a real browser (headless Debian Chromium) on the demo organisation."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import SCREENSHOTS, XSS_ID, XSS_NAME, sign_in


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_overview_renders_its_charts(page_for, served):
    page = page_for("analyst")
    page.goto(served.url + "/")
    assert page.locator("h1").inner_text() == "Compliance overview"
    for section in ("#by-status", "#by-framework", "#findings", "#trends", "#freshness"):
        assert page.locator(f"{section} svg").count() >= 1, section
    # controls by status: the donut's segments add up to the catalogue
    assert page.locator("#by-status svg circle.seg").count() >= 2
    assert "/27" in (page.locator("#by-status svg").text_content() or "")
    # every headline framework has a bar
    labels = page.locator("#by-framework svg text").all_text_contents()
    for name in ("SOC 2", "ISO 27001", "NIST 800-53", "21 CFR 11", "EU GMP Annex 11"):
        assert name in labels
    # trends: two full assessments are two points; latency has p50/p90/p99 lines over the months
    trends = page.locator("#trends svg.chart")
    assert trends.count() == 3
    assert trends.nth(0).locator("circle.pt").count() == 2
    assert trends.nth(2).locator("path.line").count() == 3
    assert page.locator("#ledger .badge").first.inner_text() == "signature verified"
    assert page.locator("#freshness tbody tr").count() >= 5
    _shot(page, "overview.png")


def test_failing_control_leads_to_a_finding_whose_chain_shows_approval_and_events(page_for, served):
    page = page_for("auditor")
    page.goto(served.url + "/controls?state=failing")
    row = page.locator("tr[data-control=access_before_approval]")
    assert row.get_attribute("data-state") == "failing"
    row.locator("a").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/controls/access_before_approval")
    assert page.locator("#run-now").count() == 0  # auditors read; they do not run controls
    page.locator("#findings tr[data-finding] a").first.click()
    page.wait_for_load_state()
    assert "/findings/" in page.url
    chain = page.locator("#chain ol.chain > li")
    kinds = [chain.nth(i).get_attribute("data-node") for i in range(chain.count())]
    assert "approval" in kinds and "enforcement" in kinds, kinds
    assert "governance" in kinds, kinds
    enforcement = page.locator("li[data-node=enforcement]").first
    assert enforcement.locator(".basis").inner_text()  # how the event was linked to the request
    # the raw record as ingested and its inclusion proof, verified against the signed checkpoint
    enforcement.locator("details.raw summary").click()
    assert enforcement.locator("pre.raw").first.inner_text().strip().startswith("{")
    assert "inclusion proof verified" in enforcement.locator("details.proof summary").inner_text()
    page.locator("details.proof summary").first.click()
    _shot(page, "finding.png")


def test_person_page_draws_the_timeline(page_for, served):
    page = page_for("auditor")
    page.goto(served.url + "/findings?control=access_before_approval")
    page.locator("#findings tr[data-finding] a[href^='/findings/']").first.click()
    page.wait_for_load_state()
    page.locator("a[data-person-link]").click()
    page.wait_for_load_state()
    svg = page.locator("#timeline svg.timeline")
    assert svg.count() == 1
    lanes = svg.locator("text.lbl").all_text_contents()
    assert "ServiceNow" in lanes and len(lanes) >= 2, lanes
    assert svg.locator("g").count() > 5  # markers
    assert page.locator("#accounts tbody tr").count() >= 1
    assert page.locator("#accounts .basis").first.inner_text()
    page.fill("input[name=at]", "2026-03-01")
    page.click("#point-in-time button")
    page.wait_for_load_state()
    assert page.locator("#point-in-time table, #point-in-time .empty").count() == 1
    page.goto(page.url.split("?")[0] + "?at=yesterday-ish")
    assert page.locator("#point-in-time [role=alert]").count() == 1  # one line, the page still works
    assert page.locator("#timeline svg.timeline").count() == 1
    page.goto(page.url.split("?")[0])
    _shot(page, "person.png")


def test_auditor_builds_downloads_and_verifies_a_package(page_for, served, tmp_path):
    pytest.importorskip("accessproof.audit.package", reason="the package builder is not installed")
    page = page_for("auditor")
    page.goto(served.url + "/packages")
    page.select_option("#build-control select[name=control]", "revocation_late")
    page.click("#build-control button")
    page.wait_for_load_state()
    assert "verified" in page.locator(".flash.ok").inner_text()
    row = page.locator("tr[data-package]").first
    assert "verified" in row.locator(".badge").inner_text()
    with page.expect_download() as dl:
        row.locator("a[data-download]").click()
    path = tmp_path / "package.zip"
    dl.value.save_as(path)
    assert zipfile.is_zipfile(path)
    vkey = served.store_dir / "keys" / "ledger.vkey"
    cli = [sys.executable, "-m", "accessproof.cli"]
    has_cli = "verify-package" in subprocess.run([*cli, "--help"], capture_output=True, text=True).stdout
    if has_cli:
        done = subprocess.run([*cli, "verify-package", str(path), "--key", str(vkey)], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        from accessproof.audit.verify_package import verify_package

        report = verify_package(path, key=str(vkey))
        assert report.ok, report.failures
    # one evidence file changed after download: verification fails
    from accessproof.audit.verify_package import verify_package

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        names = src.namelist()
        victim = next(n for n in names if n.startswith("evidence/") or n.startswith("raw/"))
        for n in names:
            body = src.read(n)
            dst.writestr(n, body + b" " if n == victim else body)
    assert not verify_package(tampered, key=str(vkey)).ok


def test_auditor_cannot_reach_admin_or_run_assessments(page_for, served):
    page = page_for("auditor")
    page.goto(served.url + "/")
    assert page.locator("nav a[data-nav=admin]").count() == 0
    response = page.goto(served.url + "/admin")
    assert response.status == 403
    assert "may not" in page.locator("[data-error]").inner_text()
    # a forged run request with a valid CSRF token is still refused on the server
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(served.url + "/controls/revocation_late/run", form={"csrf_token": csrf})
    assert r.status == 403
    r = page.request.post(served.url + "/admin/tokens", form={"csrf_token": csrf, "role": "admin"})
    assert r.status == 403
    # the analyst sees the button and may run it
    analyst = page_for("analyst")
    analyst.goto(served.url + "/controls/revocation_late")
    analyst.click("#run-now button")
    analyst.wait_for_load_state()
    assert "ran revocation_late" in analyst.locator(".flash.ok").inner_text()
    # at the API: the auditor's token may read but not administer or run anything
    api = httpx.Client(base_url=served.url, timeout=60)
    auditor = {"Authorization": f"Bearer {served.tokens['auditor']}"}
    assert api.get("/api/v1/whoami", headers=auditor).json()["role"] == "auditor"
    schema = api.get("/openapi.json").json()
    posts = [p for p, ops in schema["paths"].items() if "post" in ops and ("assess" in p or "token" in p
                                                                          or "hold" in p)]
    for p in posts:
        assert api.post(p, headers=auditor, json={}).status_code == 403, p
    # the dashboard session alone does not authorise API writes (no CSRF header): 401
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}
    r = api.post("/api/v1/ingest/okta", cookies=cookie, content=b"{}")
    assert r.status_code == 401


def test_markup_in_ingested_data_renders_as_text(page_for, served):
    page = page_for("analyst")
    page.goto(served.url + "/people?q=markup")
    link = page.locator(f"tr[data-person='{XSS_ID}'] a").first
    assert link.inner_text() == XSS_NAME
    assert page.locator("img[src=x]").count() == 0
    link.click()
    page.wait_for_load_state()
    assert page.locator("h1[data-display-name]").inner_text().startswith(XSS_NAME)
    assert XSS_NAME in page.locator("#timeline").inner_html().replace("&lt;", "<").replace("&gt;", ">") or \
        page.locator("#timeline svg, #timeline .empty").count() >= 1
    assert page.locator("img[src=x]").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]
    html = page.content()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert page.locator("script").count() == 0


def test_every_page_and_export_for_an_analyst(page_for, served):
    page = page_for("analyst")
    for path, heading in (("/controls", "Controls"), ("/assessments", "Assessments"), ("/findings", "Findings"),
                          ("/people", "People"),
                          ("/evidence", "Evidence search"), ("/matrix", "Traceability matrix"),
                          ("/packages", "Audit packages"), ("/sources", "Sources")):
        r = page.goto(served.url + path)
        assert r.status == 200, path
        assert page.locator("h1").first.inner_text() == heading
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.locator("#quarantine, #completeness").count() == 2
    # re-tests are marked as such, and the kind filter keeps only them
    page.goto(served.url + "/assessments")
    kinds = page.locator("#assessments tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds.count("full") == 2 and kinds.count("retest") == 1, kinds
    assert page.locator("tr[data-kind=retest] .badge").inner_text() == "retest"
    page.select_option("select[name=kind]", "retest")
    page.click("form.filters button")
    page.wait_for_load_state()
    assert page.locator("#assessments tbody tr").count() == 1
    assert page.locator("#assessments tbody tr").get_attribute("data-kind") == "retest"
    _shot(page, "assessments.png")
    page.goto(served.url + "/evidence?control=revocation_late")
    assert page.locator("#events tbody tr, #records tbody tr").count() >= 1
    page.goto(served.url + "/evidence?since=not-a-date")
    assert page.locator("[role=alert]").count() == 1
    page.goto(served.url + "/controls/no_such_control")
    assert "no control" in page.locator("[data-error]").inner_text()
    exports = {}
    for fmt in ("csv", "xlsx", "oscal"):
        r = page.request.get(served.url + f"/matrix/export/{fmt}")
        assert r.status == 200, fmt
        exports[fmt] = r.body()
    assert exports["csv"].decode().startswith("framework,")
    assert exports["xlsx"][:2] == b"PK"
    assert "assessment-results" in json.loads(exports["oscal"])


def test_sessions_are_signed_csrf_checked_and_end_with_the_token(browser, served):
    from accessproof.api.auth import create_token, revoke_token

    ctx = browser.new_context()
    page = ctx.new_page()
    # an ingest token writes evidence only: no dashboard
    sign_in(page, served, served.tokens["ingest"])
    assert "/login" in page.url and page.locator("[role=alert]").count() == 1
    sign_in(page, served, "ap_nope_nope")
    assert "unknown or revoked" in page.locator("[role=alert]").inner_text()
    with served.app.state.store_lock:  # type: ignore[attr-defined]
        token = create_token(served.app.state.store, "analyst", "short-lived")  # type: ignore[attr-defined]
    sign_in(page, served, token)
    assert page.locator("h1").inner_text() == "Compliance overview"
    cookie = next(c for c in ctx.cookies() if c["name"] == "ap_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert token not in cookie["value"]
    # a form without its CSRF token is refused
    r = page.request.post(served.url + "/logout", form={})
    assert r.status == 400
    # a tampered cookie is no session
    forged = httpx.get(served.url + "/", cookies={"ap_session": cookie["value"][:-2] + "xx"},
                       follow_redirects=False)
    assert forged.status_code == 303 and "/login" in forged.headers["location"]
    with served.app.state.store_lock:  # type: ignore[attr-defined]
        tid = token.split("_")[1]
        assert revoke_token(served.app.state.store, tid)  # type: ignore[attr-defined]
    page.goto(served.url + "/")
    assert "/login" in page.url
    ctx.close()


def test_admin_manages_tokens_and_holds(page_for, served):
    page = page_for("admin")
    page.goto(served.url + "/admin")
    assert page.locator("#tokens tbody tr").count() >= 4
    page.select_option("#tokens select[name=role]", "auditor")
    page.fill("#tokens input[name=label]", "<b>external</b> auditor")
    page.click("#tokens button[type=submit]")
    page.wait_for_load_state()
    token = page.locator("[data-token]").inner_text()
    assert token.startswith("ap_")
    assert page.locator("#tokens td", has_text="<b>external</b> auditor").count() == 1
    page.fill("#holds input[name=reason]", "matter 42")
    page.fill("#holds input[name=subject]", "piotr.krause@acme.com")
    page.click("#holds button[type=submit]")
    page.wait_for_load_state()
    assert "set and sealed" in page.locator(".flash.ok").inner_text()
    page.fill("#holds input[name=reason]", "no criteria")
    page.fill("#holds input[name=subject]", "")
    page.click("#holds button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".flash.bad").count() == 1  # one line, not a traceback
    assert page.locator("#retention tbody tr").count() >= 2
    from accessproof.api.actions import admin_actions

    with served.app.state.store_lock:  # type: ignore[attr-defined]
        actions = [a["action"] for a in admin_actions(served.app.state.store)]  # type: ignore[attr-defined]
    assert "token.create" in actions and "hold.add" in actions


@pytest.mark.parametrize("path", ["/", "/controls", "/admin", "/people/100002"])
def test_pages_need_a_session(served, path):
    r = httpx.get(served.url + path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert Path(served.store_dir).exists()
