"""The report as one self-contained HTML page: tables in HTML, charts drawn by the inlined Chart.js.

Nothing is fetched when the page opens (a Content-Security-Policy forbids it): the chart library,
the script and the style are inlined, the figures embedded as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import Any, Final

import orjson

from processor.attainment.render_data import Document

_CSP: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
)
_MAPPING_URL: Final = re.compile(rb"\n//# sourceMappingURL=\S*\s*$")
# Inside a JSON string these escapes read back as the same characters; outside the JSON, `<`
# would let an id such as `</script><script>...` end the data block and run.
_EMBED_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_EMBED_PATTERN: Final = re.compile("[<>&\u2028\u2029]")
MAX_NOTICE_ROWS: Final = 200


@cache
def _asset(name: str) -> str:
    raw = (resources.files("processor") / "assets" / name).read_bytes()
    # The map file is not shipped: a browser's devtools would try to fetch it.
    text = _MAPPING_URL.sub(b"\n", raw).decode()
    if "</script" in text.lower():
        raise ValueError(f"{name} cannot be inlined: it contains '</script'")
    return text


def chart_library_version() -> str:
    found = re.search(r"Chart\.js v(\S+)", _asset("chart.umd.min.js")[:200])
    return found[1] if found else "unknown"


def embed(value: Any) -> str:
    """JSON that can sit inside `<script type="application/json">` whatever strings it holds."""
    text = orjson.dumps(value).decode()
    return _EMBED_PATTERN.sub(lambda match: _EMBED_ESCAPES[match[0]], text)


def render(doc: Document) -> str:
    charted = {key: value for key, value in doc.items() if key != "attainment"}
    body = "\n".join(
        (
            _header(doc),
            "<main>",
            _tiles(doc),
            _response(doc),
            _first_response(doc),
            _updates(doc),
            _escalations(doc),
            _maintenance(doc),
            _worst(doc),
            _customers(doc),
            _footer(doc),
            "</main>",
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>SLA attainment report</title>\n<style>\n{_asset('report.css')}</style>\n"
        f"</head>\n<body>\n{body}\n"
        f'<script type="application/json" id="report-data">{embed(charted)}</script>\n'
        f"<script>\n{_asset('chart.umd.min.js')}</script>\n"
        f"<script>\n{_asset('report.js')}</script>\n</body>\n</html>\n"
    )


# -- formatting -------------------------------------------------------------------------------


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


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _table(
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


def _chart(key: str, title: str, shown: bool) -> str:
    if not shown:
        return ""
    return (
        f'<div class="chart"><h3>{escape(title)}</h3><div class="canvas-box">'
        f'<canvas id="chart-{key}" role="img" aria-label="{escape(title)}"></canvas>'
        "</div></div>"
    )


def _section(title: str, what: str, *parts: str) -> str:
    charts = [p for p in parts if p.startswith('<div class="chart"')]
    rest = [p for p in parts if not p.startswith('<div class="chart"')]
    grid = f'<div class="charts">{"".join(charts)}</div>' if charts else ""
    return (
        f'<section><h2>{escape(title)}</h2><p class="what">{escape(what)}</p>'
        f"{grid}{''.join(rest)}</section>"
    )


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


# -- the page ---------------------------------------------------------------------------------


def _header(doc: Document) -> str:
    horizon = doc["horizon"] or "no events"
    return (
        f"<header><h1>SLA attainment report</h1><p>{doc['summary']['tickets']:,} tickets, "
        f"{doc['events']:,} events; every deadline due by {escape(horizon)} fired</p></header>"
    )


def _tile(label: str, value: str, note: str = "", tone: str = "") -> str:
    return (
        f'<div class="tile {tone}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="note">{escape(note)}</div></div>'
    )


def _tiles(doc: Document) -> str:
    s = doc["summary"]
    attained = s["attainment_pct"]
    tone = "" if attained is None else "good" if attained >= 95 else "bad"
    return (
        '<div class="tiles">'
        + "".join(
            (
                _tile("Tickets", f"{s['tickets']:,}", f"{s['pending']:,} pending"),
                _tile(
                    "Initial response met",
                    _pct(attained),
                    f"{s['met']:,} met of {s['met'] + s['breached']:,} decided",
                    tone,
                ),
                _tile(
                    "Breached",
                    f"{s['breached']:,}",
                    "initial response",
                    "bad" if s["breached"] else "",
                ),
                _tile(
                    "First response p50",
                    span(s["first_response_p50_seconds"]),
                    f"p90 {span(s['first_response_p90_seconds'])}",
                ),
                _tile("First response p99", span(s["first_response_p99_seconds"])),
                _tile("Escalations", f"{s['escalations']:,}"),
                _tile(
                    "Update dues",
                    f"{s['update_dues']:,}",
                    f"{s['tickets_with_missed_update']:,} tickets missed an update",
                ),
                _tile(
                    "Short-notice maintenance",
                    f"{s['short_notice']:,}",
                    f"of {s['maintenance_notices']:,} notices",
                    "bad" if s["short_notice"] else "",
                ),
            )
        )
        + "</div>"
    )


def _response(doc: Document) -> str:
    cells = doc["attainment_by_severity_tier"]
    table = (
        _table(
            ("severity", "tier", "tickets", "met", "breached", "pending", "attainment"),
            (
                (
                    r["severity"],
                    r["tier"],
                    r["tickets"],
                    r["met"],
                    r["breached"],
                    r["pending"],
                    _pct(r["attainment_pct"]),
                )
                for r in cells
            ),
        )
        if cells
        else _empty("No tickets in the input.")
    )
    return _section(
        "Initial response",
        "Met: answered by the target of the ticket's severity and tier; breached: the breach fired; "
        "pending: neither by the horizon. Attainment = met / (met + breached), per ISO week of "
        "the opening.",
        _chart(
            "weekly", "Attainment per week, by severity", bool(doc["attainment_by_week_severity"])
        ),
        _chart("severity-tier", "Tickets by severity and tier", bool(cells)),
        table,
    )


def _first_response(doc: Document) -> str:
    rows = doc["first_response"]
    table = _table(
        ("severity", "answered", "p50", "p90", "p99"),
        (
            (
                r["severity"] or "all",
                r["responded"],
                span(r["p50_seconds"]),
                span(r["p90_seconds"]),
                span(r["p99_seconds"]),
            )
            for r in rows
        ),
    )
    return _section(
        "Time to first response",
        "Wall-clock time from the opening to the first response, answered tickets only; "
        "percentiles by nearest rank.",
        _chart("first-response", "Tickets per time to first response", rows[-1]["responded"] > 0),
        table,
    )


def _updates(doc: Document) -> str:
    rows = doc["missed_updates"]
    table = (
        _table(
            ("severity", "tickets", "missed an update", "update dues"),
            (
                (r["severity"], r["tickets"], r["tickets_with_missed_update"], r["update_dues"])
                for r in rows
            ),
        )
        if rows
        else _empty("No tickets in the input.")
    )
    return _section(
        "Update cadence",
        "An update due (sla.update_due) is a window of the severity's update frequency that "
        "passed without a customer-visible update; per ISO week it fell due.",
        _chart("update-dues", "Update dues per week, by severity", bool(doc["update_dues"])),
        table,
    )


def _escalations(doc: Document) -> str:
    rows = doc["escalations"]
    table = (
        _table(
            (
                "severity",
                "step",
                "escalations",
                "ladder",
                "median elapsed",
                "p90 elapsed",
                "max elapsed",
                "later than the ladder",
            ),
            (
                (
                    r["severity"],
                    r["step"],
                    r["escalations"],
                    span(r["after_seconds"]),
                    span(r["elapsed_p50_seconds"]),
                    span(r["elapsed_p90_seconds"]),
                    span(r["elapsed_max_seconds"]),
                    r["beyond_ladder"],
                )
                for r in rows
            ),
        )
        if rows
        else _empty("No escalations.")
    )
    acks = doc["acknowledgements"]
    acknowledged = (
        _table(
            ("severity", "step", "acknowledged", "windows missed", "median latency", "p90 latency"),
            (
                (
                    r["severity"],
                    r["step"],
                    r["acknowledged"],
                    r["windows_missed"],
                    span(r["latency_p50_seconds"]),
                    span(r["latency_p90_seconds"]),
                )
                for r in acks
            ),
        )
        if acks
        else _empty("No acknowledgements asked for (the policy has none, or no step awaited one).")
    )
    return _section(
        "Escalations",
        "Escalations per step; elapsed is wall-clock time from the cycle's clock start to the "
        "escalation, against the ladder's 'after' (later: a catch-up after a severity raise, or "
        "working hours).",
        _chart("escalations", "Escalations per step, by severity", bool(rows)),
        _chart("escalation-elapsed", "Hours from the clock start to each step", bool(rows)),
        table,
        '<div class="table"><h3>Acknowledgements</h3></div>',
        acknowledged,
    )


def _maintenance(doc: Document) -> str:
    m = doc["maintenance"]
    notices = m["notices"]
    shown = notices[:MAX_NOTICE_ROWS]
    table = (
        _table(
            (
                "maintenance",
                "revision",
                "kind",
                "announced",
                "window start",
                "lead time",
                "short notice",
            ),
            (
                (
                    n["maintenance_id"],
                    n["revision"],
                    n["kind"],
                    n["announced_at"],
                    n["window_start"],
                    span(n["lead_time_seconds"]),
                    "yes" if n["short_notice"] else "",
                )
                for n in shown
            ),
            (n["short_notice"] for n in shown),
        )
        if notices
        else _empty("No maintenance notices.")
    )
    more = len(notices) - len(shown)
    return _section(
        "Maintenance notice lead times",
        f"Each notice (a schedule or a reschedule): window start minus the announcement. "
        f"{m['short_notice']:,} planned windows announced under the minimum notice "
        f"({span(m['minimum_notice_seconds'])}); {m['reminders']:,} reminders, "
        f"{m['cancelled']:,} cancelled.",
        _chart(
            "lead-times", "Notices per lead time (red: under the minimum notice)", bool(notices)
        ),
        table,
        _empty(f"{more:,} more notices in the JSON output.") if more > 0 else "",
    )


_WORST_HEADERS: Final = ("ticket", "customer", "severity", "tier")


def _worst(doc: Document) -> str:
    worst = doc["worst"]

    def listed(key: str, title: str, value: str, shown: Any) -> str:
        rows = [
            (t["ticket_id"], t["customer_id"], t["severity"], t["tier"], shown(t))
            for t in worst[key]
        ]
        table = _table((*_WORST_HEADERS, value), rows) if rows else _empty("None.")
        return f'<div class="table"><h3>{escape(title)}</h3></div>{table}'

    return _section(
        "Worst tickets",
        "The worst of each list, named by ticket and customer id only.",
        listed(
            "breach_lateness",
            "Latest answers after a breach",
            "late by",
            lambda t: (
                span(t["breach_lateness_seconds"]) + ("" if t["answered"] else " (unanswered)")
            ),
        ),
        listed(
            "first_response",
            "Longest time to first response",
            "first response",
            lambda t: span(t["first_response_seconds"]),
        ),
        listed("update_dues", "Most update dues", "update dues", lambda t: t["update_dues"]),
    )


def _customers(doc: Document) -> str:
    rows = doc["customers"]
    table = (
        _table(
            (
                "customer",
                "tickets",
                "met",
                "breached",
                "pending",
                "attainment",
                "first response p90",
                "update dues",
                "escalations",
            ),
            (
                (
                    r["customer"],
                    r["tickets"],
                    r["met"],
                    r["breached"],
                    r["pending"],
                    _pct(r["attainment_pct"]),
                    span(r["first_response_p90_seconds"]),
                    r["update_dues"],
                    r["escalations"],
                )
                for r in rows
            ),
        )
        if rows
        else _empty("No tickets in the input.")
    )
    return _section("Customers", "Every customer, by customer id.", table)


def _footer(doc: Document) -> str:
    return (
        f"<footer>{doc['outputs']:,} outputs counted, {doc['retracted_outputs']:,} retracted "
        f"outputs left out. Charts: Chart.js {escape(chart_library_version())} (MIT), "
        "inlined: this page needs no network.</footer>"
    )
