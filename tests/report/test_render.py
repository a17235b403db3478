"""The report's JSON, CSV and HTML: shapes, agreement with each other, escaping, empty input."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter

from processor.attainment.compute import compute
from processor.attainment.html_parts import span
from processor.attainment.render_data import CSV_COLUMNS, document, to_csv, to_json
from processor.attainment.render_html import embed, render

from .generator import HOSTILE
from .render_fixtures import generated_document, generated_report

_DATA = re.compile(r'<script type="application/json" id="report-data">(.*?)</script>', re.S)


def _csv_rows(doc: dict[str, object]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(to_csv(doc))))


def test_the_json_document_adds_up() -> None:
    doc = json.loads(to_json(generated_document(hostile=False)))
    assert (doc["schema"], doc["version"]) == ("sla-processor/attainment-report", 1)
    summary = doc["summary"]
    assert summary["tickets"] == 300
    assert summary["met"] + summary["breached"] + summary["pending"] == summary["tickets"]
    for section in ("attainment", "attainment_by_week_severity", "attainment_by_severity_tier",
                    "customers"):  # fmt: skip
        totals = Counter()
        for row in doc[section]:
            totals.update({k: row[k] for k in ("tickets", "met", "breached", "pending")})
        assert totals["tickets"] == summary["tickets"], section
        assert totals["breached"] == summary["breached"], section
    every = doc["first_response"][-1]
    assert every["severity"] is None
    assert sum(every["buckets"]) == every["responded"]
    assert every["responded"] == sum(r["responded"] for r in doc["first_response"][:-1])
    assert sum(r["escalations"] for r in doc["escalations"]) == summary["escalations"]
    maintenance = doc["maintenance"]
    assert sum(maintenance["lead_time_buckets"]) == len(maintenance["notices"])
    assert sum(n["short_notice"] for n in maintenance["notices"]) == maintenance["short_notice"]
    # Every section has something, so the HTML has every chart to draw.
    for key in ("update_dues", "escalations", "acknowledgements"):
        assert doc[key], key
    assert maintenance["short_notice"] > 0
    assert len(doc["worst"]["first_response"]) == 20


def test_the_csv_is_one_long_table_of_the_same_figures() -> None:
    doc = generated_document(hostile=False)
    rows = _csv_rows(doc)
    assert tuple(rows[0]) == CSV_COLUMNS
    sections = Counter(row["section"] for row in rows)
    # Five metrics (tickets, met, breached, pending, attainment_pct) per row of the cube.
    assert sections["attainment"] == 5 * len(doc["attainment"])
    summary = {row["metric"]: row["value"] for row in rows if row["section"] == "summary"}
    assert summary["tickets"] == str(doc["summary"]["tickets"])
    cube = [r for r in rows if r["section"] == "attainment" and r["metric"] == "breached"]
    assert sum(int(r["value"]) for r in cube) == doc["summary"]["breached"]
    assert all(r["week"] and r["severity"] and r["tier"] and r["customer"] for r in cube)
    steps = {r["metric"] for r in rows if r["section"] == "escalations"}
    assert "step_1.escalations" in steps
    buckets = [r for r in rows if r["section"] == "first_response" and r["severity"] == ""]
    counted = [int(r["value"]) for r in buckets if r["metric"].startswith("bucket:")]
    assert counted == doc["first_response"][-1]["buckets"]


def test_a_hostile_customer_id_cannot_leave_the_data_block() -> None:
    html = generated_report(hostile=True)
    assert HOSTILE in json.dumps(generated_document(hostile=True))  # the id is in the figures
    assert "<script>alert(1)" not in html
    assert html.count("</script>") == 3  # the data block, the chart library, the report script
    (data,) = _DATA.findall(html)
    customers = {row["customer"] for row in json.loads(data)["customers"]}
    assert HOSTILE in customers  # read back intact
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html  # its table cell


def test_embedded_json_escapes_what_html_would_read() -> None:
    text = embed({"id": "</script><!-- & \u2028"})
    assert not set("<>&\u2028") & set(text)
    assert json.loads(text) == {"id": "</script><!-- & \u2028"}


def test_the_page_is_self_contained() -> None:
    html = generated_report(hostile=False)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "default-src 'none'" in html
    assert "sourceMappingURL" not in html
    assert html.count("<canvas") == 7
    assert "Chart.js v4.6.1" in html


def test_the_same_input_gives_the_same_bytes() -> None:
    doc = generated_document(hostile=False)
    assert render(doc) == generated_report(hostile=False)
    assert to_json(doc) == to_json(json.loads(to_json(doc)))


def test_nothing_to_report() -> None:
    doc = document(compute({}, [], None))
    assert json.loads(to_json(doc))["summary"]["tickets"] == 0
    html = render(doc)
    assert "<canvas" not in html
    assert "No tickets in the input." in html
    assert "No maintenance notices." in html
    assert _csv_rows(doc)[0]["metric"] == "tickets"


def test_durations_for_people() -> None:
    assert [span(s) for s in (None, 0, 59.6, 60, 3599, 3600, 3660, 86399, 90000)] == [
        "n/a", "0s", "1m", "1m", "59m", "1h 00m", "1h 01m", "23h 59m", "1d 1h",
    ]  # fmt: skip
