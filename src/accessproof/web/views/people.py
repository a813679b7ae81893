"""People: search, and one person's lifecycle timeline, access now and at a point in time, and accounts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from accessproof.api.auth import Principal
from accessproof.api.deps import using_store
from accessproof.web import evidence
from accessproof.web.pages import NotFound, parse_when, reader, render

router = APIRouter()


@router.get("/people", response_class=HTMLResponse)
def people(request: Request, q: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    with using_store(request) as store:
        rows = evidence.find_people(store, q.strip() or None)
    return render(request, "people.html", page="people", rows=rows, q=q)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person(request: Request, person_id: str, at: str = "", _: Principal = Depends(reader)) -> HTMLResponse:
    when, problem = parse_when(at, "at")
    with using_store(request) as store:
        p = evidence.person(store, person_id, when)
        if p is None:
            raise NotFound(f"no person {person_id!r} in the HR records")
        # the report's renderer escapes every value it draws (html.escape on text and attributes)
        svg = Markup(evidence.timeline_svg(store, p))
    return render(request, "person.html", page="people", p=p, timeline=svg, at=at, at_error=problem)
