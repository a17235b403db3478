"""The report as one self-contained HTML page: tables in HTML, charts drawn by the inlined Chart.js.

Nothing is fetched when the page opens (a Content-Security-Policy forbids it): the chart library,
the script and the style are inlined, the figures embedded as JSON.
"""

from __future__ import annotations

import re
from functools import cache
from html import escape
from importlib import resources
from typing import Any, Final

import orjson

from processor.attainment import html_sections
from processor.attainment.html_parts import pct, span
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
            *(part(doc) for part in html_sections.PARTS),
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
                    pct(attained),
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


def _footer(doc: Document) -> str:
    return (
        f"<footer>{doc['outputs']:,} outputs counted, {doc['retracted_outputs']:,} retracted "
        f"outputs left out. Charts: Chart.js {escape(chart_library_version())} (MIT), "
        "inlined: this page needs no network.</footer>"
    )
