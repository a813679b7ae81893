"""Audit packages built on the server: ``audit.package.build_package`` into ``<store>/packages/pkg-<time>-<id>.zip``
with a ``.json`` beside it (scope, who built it, counts, and the result of ``verify_package`` run on the zip as
an auditor would, pinned to the store's verifier key). The dashboard lists the same folder.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from accessproof.api.deps import fail
from accessproof.store.base import Store

PACKAGE_ID = re.compile(r"^pkg-\d{8}T\d{6}-[0-9a-f]{8}$")


class PackageRequest(BaseModel):
    """Exactly one of ``control``, ``person`` or ``sample``."""

    control: str | None = Field(None, description="The findings of this control's latest run.")
    person: str | None = Field(None, description="This person's lifecycle (id, email or username).")
    sample: dict[str, Any] | None = Field(None, description="A sample document (accessproof.sample/1).")
    since_checkpoint: str | None = Field(None, description="A checkpoint note you hold: adds a consistency proof.")


def package_dir(store: Store) -> Path:
    base = Path(store.dir) / "packages"
    base.mkdir(parents=True, exist_ok=True)
    return base


def list_packages(store: Store) -> list[dict[str, Any]]:
    out = []
    for meta in sorted(package_dir(store).glob("pkg-*.json"), reverse=True):
        try:
            out.append(json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


def get_package(store: Store, package_id: str) -> dict[str, Any] | None:
    if not PACKAGE_ID.match(package_id):
        return None
    path = package_dir(store) / f"{package_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def package_file(store: Store, package_id: str) -> Path | None:
    if not PACKAGE_ID.match(package_id):
        return None
    path = package_dir(store) / f"{package_id}.zip"
    return path if path.is_file() else None


def build(store: Store, req: PackageRequest, *, by: str) -> dict[str, Any]:
    """Build, verify and describe one package; 400 with the builder's reason when it cannot be built."""
    from accessproof.audit.package import PackageError, build_package
    from accessproof.audit.verify_package import verify_package
    from accessproof.ledger.api import keys_dir

    chosen = [k for k in ("control", "person", "sample") if getattr(req, k) is not None]
    if len(chosen) != 1:
        fail(400, "invalid package request", "give exactly one of control, person or sample")
    mode = chosen[0]
    now = datetime.now(UTC)
    pid = f"pkg-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    out = package_dir(store) / f"{pid}.zip"
    sample_file = None
    try:
        if mode == "sample":
            sample_file = tempfile.NamedTemporaryFile(prefix="accessproof-sample-", suffix=".json")  # noqa: SIM115
            sample_file.write(orjson.dumps(req.sample))
            sample_file.flush()
            scope: dict[str, Any] = {"sample": sample_file.name}
        else:
            scope = {mode: getattr(req, mode)}
        result = build_package(store, out, since_checkpoint=req.since_checkpoint, **scope)
    except PackageError as e:
        fail(400, "cannot build package", (str(e).replace(sample_file.name, "sample") if sample_file else str(e)))
    finally:
        if sample_file is not None:
            sample_file.close()
    vkey = keys_dir(store.dir) / "ledger.vkey"
    report = verify_package(out, key=str(vkey) if vkey.exists() else None)
    meta = {"id": pid, "file": out.name, "mode": mode,
            "target": getattr(req, mode) if mode != "sample" else (req.sample or {}).get("control", {}).get("id"),
            "built_by": by, "built": now.isoformat(), "items": result.items, "evidence": result.evidence,
            "proofs": result.proofs, "tree_size": result.tree_size, "bytes": result.bytes,
            "warnings": list(result.warnings)[:20],
            "verification": {"ok": report.ok, "summary": report.summary(), "failures": report.failures[:20],
                             "warnings": report.warnings[:20], "pinned_key": vkey.exists()},
            "download": f"/api/v1/packages/{pid}/zip"}
    (package_dir(store) / f"{pid}.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
    return meta
