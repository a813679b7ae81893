"""Every router of the API, in the order they appear in the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from accessproof.api import admin, audit, events, findings, identities, ingest, ledger, system, webhooks

ALL: list[APIRouter] = [system.router, ingest.router, events.router, identities.router, findings.router,
                        audit.router, ledger.router, admin.router, webhooks.router]
