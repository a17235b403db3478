"""Pieces of the HTML page: durations and percentages for people, tables, charts, sections.

Every text given to them is escaped here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any


def span(seconds: float | None) -> str:
    """A duration for people: 45s, 12m, 3h 05m, 2d 4h."""
    if seconds is None:
        return "n/a"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86400
    if whole < 3600:
        return f"{minutes}m"
    if whole < 86400:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24}h"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], flagged: Iterable[bool] = ()
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    flags = iter(flagged)
    body = "".join(
        ('<tr class="flag">' if next(flags, False) else "<tr>")
        + "".join(f"<td>{escape(str(cell))}</td>" for cell in row)
        + "</tr>"
        for row in rows
    )
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def chart(key: str, title: str, shown: bool) -> str:
    if not shown:
        return ""
    return (
        f'<div class="chart"><h3>{escape(title)}</h3><div class="canvas-box">'
        f'<canvas id="chart-{key}" role="img" aria-label="{escape(title)}"></canvas>'
        "</div></div>"
    )


def section(title: str, what: str, *parts: str) -> str:
    charts = [p for p in parts if p.startswith('<div class="chart"')]
    rest = [p for p in parts if not p.startswith('<div class="chart"')]
    grid = f'<div class="charts">{"".join(charts)}</div>' if charts else ""
    return (
        f'<section><h2>{escape(title)}</h2><p class="what">{escape(what)}</p>'
        f"{grid}{''.join(rest)}</section>"
    )


def empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'
