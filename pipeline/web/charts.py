"""Charts drawn on the server as SVG (nothing loads from the internet; every label is escaped)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

BAR = "#3b6fd8"
SERIES = ("#3b6fd8", "#c2410c", "#12805c")


def _number(value: float) -> str:
    return f"{value:,.2f}" if value != int(value) else f"{int(value):,}"


def bars(rows: Sequence[dict[str, Any]], label: str, value: str, title: str, width: int = 560) -> Markup:
    """Horizontal bars, one per row, labelled with the row's ``label`` and ``value``."""
    if not rows:
        return Markup("")
    top = max((float(row.get(value) or 0) for row in rows), default=0.0) or 1.0
    line, left, right = 22, 170, 90
    height = line * len(rows) + 8
    plot = width - left - right
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for n, row in enumerate(rows):
        amount = float(row.get(value) or 0)
        y = 4 + n * line
        name = str(row.get(label) or "—")
        short = name if len(name) <= 14 else name[:13] + "…"
        bar = max(1.0, plot * amount / top) if amount > 0 else 0.0
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="axis"><title>{escape(name)}</title>'
            f"{escape(short)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{bar:.1f}" height="{line - 7}" fill="{BAR}" rx="2"/>'
            f'<text x="{left + bar + 5:.1f}" y="{y + 15}" class="value">{escape(_number(amount))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(
    rows: Sequence[dict[str, Any]], x: str, series: Sequence[tuple[str, str]], title: str, width: int = 560
) -> Markup:
    """Rates (0..1) over time: one polyline per ``(key, label)`` in ``series``, with a legend."""
    if not rows:
        return Markup("")
    height, left, bottom, top_pad = 200, 44, 36, 24
    plot_w, plot_h = width - left - 16, height - bottom - top_pad
    top = max((float(row.get(key) or 0) for row in rows for key, _ in series), default=0.0)
    top = max(top, 0.05)
    step = plot_w / max(1, len(rows) - 1)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top_pad + plot_h * (1 - tick)
        parts.append(
            f'<line x1="{left}" x2="{width - 16}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{tick * top:.0%}</text>'
        )
    for n, row in enumerate(rows):
        if len(rows) <= 12 or n % max(1, len(rows) // 12) == 0:
            parts.append(
                f'<text x="{left + n * step:.1f}" y="{height - bottom + 16}" text-anchor="middle" class="axis">'
                f"{escape(str(row.get(x) or '—'))}</text>"
            )
    for s, (key, name) in enumerate(series):
        color = SERIES[s % len(SERIES)]
        points = " ".join(
            f"{left + n * step:.1f},{top_pad + plot_h * (1 - float(row.get(key) or 0) / top):.1f}"
            for n, row in enumerate(rows)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        if len(rows) == 1:
            cx, cy = points.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
        parts.append(
            f'<rect x="{left + s * 160}" y="4" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + s * 160 + 14}" y="13" class="axis">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
