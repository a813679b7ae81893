"""For auditors: the traceability matrix with its exports, evidence search, and audit packages (build,
download, and the result of verifying each one as an auditor would, with ``verify_package``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from accessproof.api.auth import Principal
from accessproof.api.deps import using_store
from accessproof.web import data, evidence
from accessproof.web.pages import NotFound, back, check_csrf, packager, parse_when, reader, render, with_store

router = APIRouter()
EXPORTS = {"csv": ("text/csv; charset=utf-8", "csv"),
           "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
           "oscal": ("application/json", "oscal.json")}
PACKAGE_ID = re.compile(r"^pkg-[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$")
MAX_SAMPLE_BYTES = 5 * 1024 * 1024


@router.get("/matrix", response_class=HTMLResponse)
def matrix(request: Request, framework: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof.audit.matrix import build_matrix

    with using_store(request) as store:
        m = build_matrix(store)
    rows = [r for r in m.rows if not framework or r["framework"] == framework]
    return render(request, "matrix.html", page="matrix", m=m, rows=rows, framework=framework,
                  frameworks=list(m.summary.get("frameworks", {})))


@router.get("/matrix/export/{fmt}")
def matrix_export(request: Request, fmt: str, _: Principal = Depends(reader)) -> Response:
    from accessproof.audit.commands import render as render_matrix

    if fmt not in EXPORTS:
        raise NotFound(f"no export format {fmt!r} (csv, xlsx, oscal)")
    with using_store(request) as store:
        try:
            body, _m = render_matrix(store, fmt)
        except ValueError as e:
            return back("/matrix", err=str(e))
    media, ext = EXPORTS[fmt]
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="accessproof-matrix.{ext}"'})


@router.get("/evidence", response_class=HTMLResponse)
def search(request: Request, control: str = "", system: str = "", subject: str = "", since: str = "",
           until: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof.controls import load_catalogue

    t0, e0 = parse_when(since, "from")
    t1, e1 = parse_when(until, "to")
    asked = any((control, system, subject, since, until))
    result: dict[str, Any] = {"events": [], "records": []}
    with using_store(request) as store:
        if asked and not (e0 or e1):
            result = evidence.search(store, control=control or None, system=system or None,
                                     subject=subject or None, since=t0, until=t1)
        sources = [r[0] for r in store.query("SELECT DISTINCT source FROM events ORDER BY 1")] \
            if data.table_exists(store, "events") else []
    return render(request, "evidence.html", page="evidence", result=result, asked=asked, problem=e0 or e1,
                  controls=sorted(load_catalogue()), sources=sources,
                  filters={"control": control, "system": system, "subject": subject, "since": since,
                           "until": until})


# ---------------------------------------------------------------- audit packages


def package_dir(store: Any) -> Path:
    base = Path(store.dir) / "packages" if getattr(store, "dir", None) else Path(tempfile.gettempdir()) / \
        "accessproof-packages"
    base.mkdir(parents=True, exist_ok=True)
    return base


def _packages(store: Any) -> list[dict[str, Any]]:
    out = []
    for meta in sorted(package_dir(store).glob("pkg-*.json"), reverse=True):
        try:
            out.append(json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


@router.get("/packages", response_class=HTMLResponse)
def packages(request: Request, _: Principal = Depends(reader)) -> HTMLResponse:
    from accessproof.controls import load_catalogue

    available = _package_engine() is not None
    with using_store(request) as store:
        built = _packages(store) if available else []
        people = evidence.find_people(store, None, limit=400)
    return render(request, "packages.html", page="packages", available=available, built=built,
                  controls=sorted(load_catalogue()), people=people)


def _package_engine() -> Any:
    try:
        from accessproof.audit import package
    except ImportError:
        return None
    return package


@router.post("/packages")
async def build(request: Request, principal: Principal = Depends(packager)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    engine = _package_engine()
    if engine is None:
        return back("/packages", err="the package builder is not installed in this version")
    mode = str(form.get("mode") or "")
    target = str(form.get(mode) or "").strip() if mode in ("control", "person") else ""
    sample_path: Path | None = None
    if mode == "sample":
        upload = form.get("sample")
        raw = await upload.read(MAX_SAMPLE_BYTES + 1) if hasattr(upload, "read") else b""
        if not raw:
            return back("/packages", err="choose a sample file (accessproof.sample/1 JSON) to package")
        if len(raw) > MAX_SAMPLE_BYTES:
            return back("/packages", err="the sample file is over 5 MB")
        fd, name = tempfile.mkstemp(prefix="accessproof-sample-", suffix=".json")
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        sample_path = Path(name)
    elif mode not in ("control", "person") or not target:
        return back("/packages", err="pick a control, a person or a sample file")
    try:
        meta = await with_store(request, _build_package, engine, mode, target, sample_path, principal.subject)
    except ValueError as e:
        return back("/packages", err=f"could not build the package: {str(e).splitlines()[0]}")
    finally:
        if sample_path is not None:
            sample_path.unlink(missing_ok=True)
    verdict = "verified" if meta["verification"]["ok"] else "FAILED verification"
    return back("/packages", msg=f"built {meta['file']} ({meta['items']} items, {meta['proofs']} inclusion proofs) "
                                 f"— {verdict}")


def _build_package(store: Any, engine: Any, mode: str, target: str, sample: Path | None, by: str) -> dict[str, Any]:
    from accessproof.audit.verify_package import verify_package
    from accessproof.ledger.api import keys_dir

    now = datetime.now(UTC)
    pid = f"pkg-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    out = package_dir(store) / f"{pid}.zip"
    scope = {"control": target} if mode == "control" else {"person": target} if mode == "person" else \
        {"sample": sample}
    result = engine.build_package(store, out, **scope)
    vkey = keys_dir(store.dir) / "ledger.vkey" if getattr(store, "dir", None) else None
    report = verify_package(out, key=str(vkey) if vkey is not None and vkey.exists() else None)
    meta = {"id": pid, "file": out.name, "mode": mode, "target": target if mode != "sample" else "uploaded sample",
            "built_by": by, "built": now.isoformat(), "items": result.items, "evidence": result.evidence,
            "proofs": result.proofs, "tree_size": result.tree_size, "bytes": result.bytes,
            "warnings": list(result.warnings)[:20],
            "verification": {"ok": report.ok, "summary": report.summary(), "failures": report.failures[:20],
                             "warnings": report.warnings[:20], "pinned_key": bool(vkey and vkey.exists())}}
    (package_dir(store) / f"{pid}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


@router.get("/packages/{package_id}.zip")
def download(request: Request, package_id: str, _: Principal = Depends(reader)) -> Response:
    if not PACKAGE_ID.match(package_id):
        raise NotFound("no such package")
    with using_store(request) as store:
        path = package_dir(store) / f"{package_id}.zip"
    if not path.is_file():
        raise NotFound("no such package")
    return FileResponse(path, media_type="application/zip", filename=path.name)
