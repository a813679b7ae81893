"""Liveness and identity: ``/healthz`` (no credentials) and ``/api/v1/whoami``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from accessproof.api.auth import ROLES, Principal, require
from accessproof.api.deps import ERROR_RESPONSES

router = APIRouter(tags=["system"], responses=ERROR_RESPONSES)


@router.get("/healthz")
def healthz() -> dict:
    """The server is up (no credentials needed, nothing about the store is told)."""
    return {"status": "ok"}


@router.get("/api/v1/whoami")
def whoami(principal: Annotated[Principal, Depends(require(*ROLES))]) -> dict:
    """The caller's subject, role and how they signed in."""
    return asdict(principal)
