"""Charts as inline SVG, drawn on the server: no JavaScript library, nothing fetched by the browser.

Every function returns ``markupsafe.Markup``. Values that come from the store (labels, tooltips) only ever
enter the SVG through ``Markup.format`` or ``escape``, which escape them, so a display name such as
``<img src=x onerror=alert(1)>`` is drawn as text. Numbers are formatted by us.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

COLORS = {
    "ok": "#16a34a", "alarm": "#dc2626", "error": "#7c3aed", "skip": "#94a3b8", "info": "#2563eb",
    "not run": "#cbd5e1", "critical": "#991b1b", "high": "#dc2626", "medium": "#f59e0b", "low": "#60a5fa",
    "grid": "#eef2f7", "line": "#e2e8f0", "ink": "#0f172a", "muted": "#64748b", "p50": "#2563eb",
    "p90": "#f59e0b", "p99": "#dc2626", "open": "#dc2626", "pass": "#16a34a",
}


@dataclass(frozen=True)
class Segment:
    label: str
    value: float
    color: str


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


def _svg(width: float, height: float, body: Markup, label: str, cls: str = "chart") -> Markup:
    return Markup('<svg class="{cls}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" '
                  'width="{w:.0f}" height="{h:.0f}" role="img" aria-label="{label}"><title>{label}</title>{body}'
                  '</svg>').format(
        cls=cls, w=width, h=height, label=label, body=body)


def _text(x: float, y: float, text: object, *, cls: str = "lbl", anchor: str = "start") -> Markup:
    return Markup('<text x="{x:.1f}" y="{y:.1f}" class="{cls}" text-anchor="{anchor}">{t}</text>').format(
        x=x, y=y, cls=cls, anchor=anchor, t=text)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def donut(segments: Sequence[Segment], center: str, caption: str, size: int = 170) -> Markup:
    """A ring of segments with a number in the middle (e.g. controls by status)."""
    total = sum(s.value for s in segments)
    r, stroke = size / 2 - 14, 22.0
    cx = cy = size / 2
    circ = 2 * math.pi * r
    parts = [Markup('<circle cx="{c}" cy="{c}" r="{r:.1f}" fill="none" stroke="{g}" stroke-width="{w}"/>').format(
        c=cx, r=r, g=COLORS["grid"], w=stroke)]
    offset = 0.0
    for s in segments:
        if s.value <= 0 or total <= 0:
            continue
        length = circ * s.value / total
        parts.append(Markup(
            '<circle class="seg" cx="{c}" cy="{c}" r="{r:.1f}" fill="none" stroke="{color}" stroke-width="{w}" '
            'stroke-dasharray="{a:.2f} {b:.2f}" stroke-dashoffset="{o:.2f}" transform="rotate(-90 {c} {c})">'
            '<title>{tip}</title></circle>').format(
            c=cx, r=r, color=s.color, w=stroke, a=length, b=circ - length, o=-offset,
            tip=f"{s.label}: {_fmt(s.value)}"))
        offset += length
    parts.append(_text(cx, cy + 4, center, cls="big", anchor="middle"))
    parts.append(_text(cx, cy + 22, caption, cls="sub", anchor="middle"))
    return _svg(size, size, Markup("").join(parts), f"{caption}: {center}", cls="chart donut")


def stacked_bars(rows: Sequence[tuple[str, Sequence[Segment]]], *, width: int = 560, label_w: int = 130,
                 bar_h: int = 18, gap: int = 10, title: str = "", unit: str = "") -> Markup:
    """One horizontal stacked bar per row, all on the same scale, with the total at the end."""
    if not rows:
        return Markup('<p class="empty">Nothing to chart yet.</p>')
    right = 56
    height = len(rows) * (bar_h + gap) + 4
    span = width - label_w - right
    peak = max((sum(s.value for s in segs) for _, segs in rows), default=0) or 1
    parts: list[Markup] = []
    for i, (label, segs) in enumerate(rows):
        y = 2 + i * (bar_h + gap)
        parts.append(_text(label_w - 8, y + bar_h - 5, label, anchor="end"))
        parts.append(Markup('<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{g}"/>').format(
            x=label_w, y=y, w=span, h=bar_h, g=COLORS["grid"]))
        x = float(label_w)
        total = 0.0
        for s in segs:
            if s.value <= 0:
                continue
            w = max(span * s.value / peak, 2.0)
            parts.append(Markup('<rect class="seg" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{h}" fill="{c}">'
                                '<title>{tip}</title></rect>').format(
                x=x, y=y, w=w, h=bar_h, c=s.color, tip=f"{label} — {s.label}: {_fmt(s.value)}{unit}"))
            x += w
            total += s.value
        parts.append(_text(x + 6, y + bar_h - 5, _fmt(total), cls="lbl muted"))
    return _svg(width, height, Markup("").join(parts), title or "bar chart")


def legend(items: Sequence[tuple[str, str]]) -> Markup:
    """A legend row under a chart: (label, colour)."""
    return Markup('<div class="legend">{}</div>').format(Markup("").join(
        Markup('<span><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="3" '
               'fill="{c}"/></svg>{t}</span>').format(c=c, t=t) for t, c in items))


def line_chart(labels: Sequence[str], series: Sequence[Series], *, width: int = 560, height: int = 200,
               title: str = "", unit: str = "", y_max: float | None = None) -> Markup:
    """Lines over a shared x axis of labels (assessments, months); a single point is drawn as a dot."""
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values:
        return Markup('<p class="empty">No data for this chart yet.</p>')
    left, right, top, bottom = 48, 14, 12, 30
    hi = y_max if y_max is not None else _nice(max(values))
    hi = hi or 1.0

    def X(i: int) -> float:
        return left + (i + 0.5) * (width - left - right) / len(labels)

    def Y(v: float) -> float:
        return top + (1 - v / hi) * (height - top - bottom)

    parts: list[Markup] = []
    for k in range(5):
        v = hi * k / 4
        parts.append(Markup('<line x1="{a}" x2="{b}" y1="{y:.1f}" y2="{y:.1f}" stroke="{g}"/>').format(
            a=left, b=width - right, y=Y(v), g=COLORS["grid"]))
        parts.append(_text(left - 6, Y(v) + 4, f"{_fmt(v)}{unit}", cls="tick", anchor="end"))
    step = max(1, math.ceil(len(labels) / 8))
    for i, lab in enumerate(labels):
        if i % step == 0 or i == len(labels) - 1:
            parts.append(_text(X(i), height - 10, lab, cls="tick", anchor="middle"))
    for s in series:
        pts = [(X(i), Y(v), v, labels[i]) for i, v in enumerate(s.values) if v is not None]
        if len(pts) > 1:
            d = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y, _, _) in enumerate(pts))
            parts.append(Markup('<path class="line" d="{d}" fill="none" stroke="{c}" stroke-width="2.2"/>').format(
                d=d, c=s.color))
        for x, y, v, lab in pts:
            parts.append(Markup('<circle class="pt" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#fff" stroke="{c}" '
                                'stroke-width="2"><title>{tip}</title></circle>').format(
                x=x, y=y, c=s.color, tip=f"{s.name} — {lab}: {_fmt(v)}{unit}"))
    return _svg(width, height, Markup("").join(parts), title or "trend")


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def meter(pct: float | None, width: int = 90) -> Markup:
    """A small completeness / pass-rate bar with its percentage."""
    if pct is None:
        return Markup('<span class="na">n/a</span>')
    color = COLORS["ok"] if pct >= 95 else COLORS["medium"] if pct >= 60 else COLORS["alarm"]
    w = width * max(0.0, min(pct, 100.0)) / 100
    bar = _svg(width, 8, Markup('<rect width="{W}" height="8" rx="4" fill="{g}"/><rect width="{w:.1f}" height="8" '
                                'rx="4" fill="{c}"/>').format(W=width, w=w, g=COLORS["grid"], c=color),
               f"{pct:.0f}%", cls="mini")
    return Markup('<span class="meter">{bar}<span>{p:.0f}%</span></span>').format(bar=bar, p=pct)


def sparkline(values: Sequence[float | None], width: int = 110, height: int = 26, color: str = COLORS["info"]
              ) -> Markup:
    """Tiny pass-rate history of one control (0–100)."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if not pts:
        return Markup('<span class="na">—</span>')
    n = max(len(values) - 1, 1)

    def X(i: int) -> float:
        return 3 + i * (width - 6) / n if len(values) > 1 else width / 2

    def Y(v: float) -> float:
        return 3 + (100 - v) / 100 * (height - 6)

    d = " ".join(f"{'M' if j == 0 else 'L'}{X(i):.1f},{Y(v):.1f}" for j, (i, v) in enumerate(pts))
    i, v = pts[-1]
    body = Markup('<path d="{d}" fill="none" stroke="{c}" stroke-width="1.6"/>'
                  '<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{c}"/>').format(d=d, c=color, x=X(i), y=Y(v))
    return _svg(width, height, body, f"pass rate history, latest {v:.0f}%", cls="mini")
