"""The report as data: one JSON document (docs/report.md), and the same figures as a tidy CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from processor.attainment.figures import FIRST_RESPONSE, LEAD_TIME
from processor.attainment.values import (
    Attainment,
    AttainmentRow,
    Tally,
    TicketFigures,
)

SCHEMA = "sla-processor/attainment-report"
VERSION = 1
CSV_COLUMNS = ("section", "week", "severity", "tier", "customer", "metric", "value")

Document = dict[str, Any]


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def tally_fields(tally: Tally) -> dict[str, Any]:
    """A tally as the JSON documents name its fields."""
    return {
        "tickets": tally.tickets,
        "met": tally.met,
        "breached": tally.breached,
        "pending": tally.pending,
        "attainment_pct": tally.attainment,
    }


def _row(row: AttainmentRow, *dimensions: str) -> dict[str, Any]:
    named = {"week": row.week, "severity": row.severity, "tier": row.tier, "customer": row.customer}
    return {**{d: named[d] for d in dimensions}, **tally_fields(row.tally)}


def _ticket(figures: TicketFigures) -> dict[str, Any]:
    return {
        "ticket_id": figures.ticket_id,
        "customer_id": figures.customer_id,
        "severity": figures.severity,
        "tier": figures.tier,
        "week": figures.week,
        "outcome": figures.outcome,
        "first_response_seconds": _seconds(figures.first_response),
        "breach_lateness_seconds": _seconds(figures.breach_lateness),
        "answered": figures.answered,
        "update_dues": figures.update_dues,
    }


def document(report: Attainment, events: int = 0, skipped_after_until: int = 0) -> Document:
    """The whole report as JSON-ready values, in a fixed order."""
    every = report.first_response[-1]
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "horizon": _instant(report.horizon),
        "events": events,
        "skipped_after_until": skipped_after_until,
        "outputs": report.outputs,
        "retracted_outputs": report.retracted,
        "summary": {
            **tally_fields(report.overall),
            "first_response_p50_seconds": _seconds(every.p50),
            "first_response_p90_seconds": _seconds(every.p90),
            "first_response_p99_seconds": _seconds(every.p99),
            "escalations": sum(r.escalations for r in report.escalations),
            "update_dues": sum(r.update_dues for r in report.missed_updates),
            "tickets_with_missed_update": sum(
                r.tickets_with_missed_update for r in report.missed_updates
            ),
            "acknowledged": sum(r.acknowledged for r in report.acknowledgements),
            "acknowledgement_windows_missed": sum(
                r.windows_missed for r in report.acknowledgements
            ),
            "maintenance_notices": len(report.maintenance.notices),
            "short_notice": report.maintenance.short_notice,
        },
        "buckets": {
            "first_response": list(FIRST_RESPONSE.labels),
            "first_response_upper_seconds": [_seconds(e) for e in FIRST_RESPONSE.edges],
            "lead_time": list(LEAD_TIME.labels),
            "lead_time_lower_seconds": [_seconds(e) for e in LEAD_TIME.edges],
        },
        **_sections(report),
        "maintenance": _maintenance(report),
        "worst": {
            "breach_lateness": [_ticket(f) for f in report.worst.breach_lateness],
            "first_response": [_ticket(f) for f in report.worst.first_response],
            "update_dues": [_ticket(f) for f in report.worst.update_dues],
        },
    }


def _sections(report: Attainment) -> dict[str, list[dict[str, Any]]]:
    return {
        "attainment": [_row(r, "week", "severity", "tier", "customer") for r in report.attainment],
        "attainment_by_week_severity": [
            _row(r, "week", "severity") for r in report.by_week_severity
        ],
        "attainment_by_severity_tier": [
            _row(r, "severity", "tier") for r in report.by_severity_tier
        ],
        "customers": [
            {
                "customer": r.customer,
                **tally_fields(r.tally),
                "first_response_p90_seconds": _seconds(r.first_response_p90),
                "update_dues": r.update_dues,
                "escalations": r.escalations,
            }
            for r in report.customers
        ],
        "first_response": [
            {
                "severity": r.severity,
                "responded": r.responded,
                "buckets": list(r.buckets),
                "p50_seconds": _seconds(r.p50),
                "p90_seconds": _seconds(r.p90),
                "p99_seconds": _seconds(r.p99),
            }
            for r in report.first_response
        ],
        "update_dues": [
            {
                "week": r.week,
                "severity": r.severity,
                "update_dues": r.update_dues,
                "tickets": r.tickets,
            }
            for r in report.update_dues
        ],
        "missed_updates": [
            {
                "severity": r.severity,
                "tickets": r.tickets,
                "tickets_with_missed_update": r.tickets_with_missed_update,
                "update_dues": r.update_dues,
            }
            for r in report.missed_updates
        ],
        "escalations": [
            {
                "severity": r.severity,
                "step": r.step,
                "escalations": r.escalations,
                "after_seconds": _seconds(r.after),
                "elapsed_p50_seconds": _seconds(r.elapsed_p50),
                "elapsed_p90_seconds": _seconds(r.elapsed_p90),
                "elapsed_max_seconds": _seconds(r.elapsed_max),
                "beyond_ladder": r.beyond_ladder,
            }
            for r in report.escalations
        ],
        "acknowledgements": [
            {
                "severity": r.severity,
                "step": r.step,
                "acknowledged": r.acknowledged,
                "windows_missed": r.windows_missed,
                "latency_p50_seconds": _seconds(r.latency_p50),
                "latency_p90_seconds": _seconds(r.latency_p90),
            }
            for r in report.acknowledgements
        ],
    }


def _maintenance(report: Attainment) -> dict[str, Any]:
    figures = report.maintenance
    return {
        "notices": [
            {
                "maintenance_id": n.maintenance_id,
                "revision": n.revision,
                "kind": n.kind,
                "announced_at": _instant(n.announced_at),
                "window_start": _instant(n.window_start),
                "lead_time_seconds": _seconds(n.lead_time),
                "short_notice": n.short_notice,
            }
            for n in figures.notices
        ],
        "short_notice": figures.short_notice,
        "minimum_notice_seconds": _seconds(figures.minimum_notice),
        "reminders": figures.reminders,
        "cancelled": figures.cancelled,
        "lead_time_buckets": list(figures.lead_buckets),
        "lead_time_p50_seconds": _seconds(figures.lead_p50),
    }


def to_json(doc: Document) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


# -- CSV: one long table ---------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str, Any]


def _value(value: Any) -> Any:
    return "" if value is None else value


def _metrics(section: str, item: dict[str, Any], prefix: str = "") -> Iterator[Row]:
    """A JSON object of a section as rows: its dimensions as columns, every number a metric."""
    dims = tuple(str(item.get(d) or "") for d in ("week", "severity", "tier", "customer"))
    for key, value in item.items():
        if key in ("week", "severity", "tier", "customer", "step"):
            continue
        if isinstance(value, list):
            continue
        yield (section, *dims, f"{prefix}{key}", _value(value))


def rows(doc: Document) -> Iterator[Row]:
    """Every aggregate of the document; per-notice and per-ticket lists are in JSON only."""
    yield from _metrics("summary", doc["summary"])
    for section in (
        "attainment",
        "attainment_by_week_severity",
        "attainment_by_severity_tier",
        "customers",
        "update_dues",
        "missed_updates",
    ):
        for item in doc[section]:
            yield from _metrics(section, item)
    for item in doc["first_response"]:
        yield from _metrics("first_response", item)
        for label, count in zip(doc["buckets"]["first_response"], item["buckets"], strict=True):
            yield (
                "first_response",
                "",
                str(item["severity"] or ""),
                "",
                "",
                f"bucket:{label}",
                count,
            )
    for section in ("escalations", "acknowledgements"):
        for item in doc[section]:
            yield from _metrics(section, item, prefix=f"step_{item['step']}.")
    maintenance = doc["maintenance"]
    yield from _metrics("maintenance", maintenance)
    for label, count in zip(
        doc["buckets"]["lead_time"], maintenance["lead_time_buckets"], strict=True
    ):
        yield ("maintenance", "", "", "", "", f"lead_time_bucket:{label}", count)


def to_csv(doc: Document) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows(doc))
    return out.getvalue()
