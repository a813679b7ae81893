"""Every router of the API, in the order they appear in the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from accessproof.api import events, system

ALL: list[APIRouter] = [system.router, events.router]
