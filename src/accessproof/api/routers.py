"""Every router of the API, in the order they appear in the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from accessproof.api import events, ingest, system, webhooks

ALL: list[APIRouter] = [system.router, ingest.router, events.router, webhooks.router]
