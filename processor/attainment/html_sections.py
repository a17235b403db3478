"""The sections of the HTML page, one per figure of the report: charts (drawn by report.js
from the embedded data) and tables."""

from __future__ import annotations

from html import escape
from typing import Any, Final

from processor.attainment.html_parts import chart, empty, pct, section, span, table
from processor.attainment.render_data import Document

MAX_NOTICE_ROWS: Final = 200


def response(doc: Document) -> str:
    cells = doc["attainment_by_severity_tier"]
    rendered = (
        table(
            ("severity", "tier", "tickets", "met", "breached", "pending", "attainment"),
            (
                (
                    r["severity"],
                    r["tier"],
                    r["tickets"],
                    r["met"],
                    r["breached"],
                    r["pending"],
                    pct(r["attainment_pct"]),
                )
                for r in cells
            ),
        )
        if cells
        else empty("No tickets in the input.")
    )
    return section(
        "Initial response",
        "Met: answered by the target of the ticket's severity and tier; breached: the breach fired; "
        "pending: neither by the horizon. Attainment = met / (met + breached), per ISO week of "
        "the opening.",
        chart(
            "weekly", "Attainment per week, by severity", bool(doc["attainment_by_week_severity"])
        ),
        chart("severity-tier", "Tickets by severity and tier", bool(cells)),
        rendered,
    )


def first_response(doc: Document) -> str:
    rows = doc["first_response"]
    rendered = table(
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
    return section(
        "Time to first response",
        "Wall-clock time from the opening to the first response, answered tickets only; "
        "percentiles by nearest rank.",
        chart("first-response", "Tickets per time to first response", rows[-1]["responded"] > 0),
        rendered,
    )


def updates(doc: Document) -> str:
    rows = doc["missed_updates"]
    rendered = (
        table(
            ("severity", "tickets", "missed an update", "update dues"),
            (
                (r["severity"], r["tickets"], r["tickets_with_missed_update"], r["update_dues"])
                for r in rows
            ),
        )
        if rows
        else empty("No tickets in the input.")
    )
    return section(
        "Update cadence",
        "An update due (sla.update_due) is a window of the severity's update frequency that "
        "passed without a customer-visible update; per ISO week it fell due.",
        chart("update-dues", "Update dues per week, by severity", bool(doc["update_dues"])),
        rendered,
    )


def escalations(doc: Document) -> str:
    rows = doc["escalations"]
    rendered = (
        table(
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
        else empty("No escalations.")
    )
    acks = doc["acknowledgements"]
    acknowledged = (
        table(
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
        else empty("No acknowledgements asked for (the policy has none, or no step awaited one).")
    )
    return section(
        "Escalations",
        "Escalations per step; elapsed is wall-clock time from the cycle's clock start to the "
        "escalation, against the ladder's 'after' (later: a catch-up after a severity raise, or "
        "working hours).",
        chart("escalations", "Escalations per step, by severity", bool(rows)),
        chart("escalation-elapsed", "Hours from the clock start to each step", bool(rows)),
        rendered,
        '<div class="table"><h3>Acknowledgements</h3></div>',
        acknowledged,
    )


def maintenance(doc: Document) -> str:
    m = doc["maintenance"]
    notices = m["notices"]
    shown = notices[:MAX_NOTICE_ROWS]
    rendered = (
        table(
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
        else empty("No maintenance notices.")
    )
    more = len(notices) - len(shown)
    return section(
        "Maintenance notice lead times",
        f"Each notice (a schedule or a reschedule): window start minus the announcement. "
        f"{m['short_notice']:,} planned windows announced under the minimum notice "
        f"({span(m['minimum_notice_seconds'])}); {m['reminders']:,} reminders, "
        f"{m['cancelled']:,} cancelled.",
        chart("lead-times", "Notices per lead time (red: under the minimum notice)", bool(notices)),
        rendered,
        empty(f"{more:,} more notices in the JSON output.") if more > 0 else "",
    )


_WORST_HEADERS: Final = ("ticket", "customer", "severity", "tier")


def worst(doc: Document) -> str:
    worst = doc["worst"]

    def listed(key: str, title: str, value: str, shown: Any) -> str:
        rows = [
            (t["ticket_id"], t["customer_id"], t["severity"], t["tier"], shown(t))
            for t in worst[key]
        ]
        rendered = table((*_WORST_HEADERS, value), rows) if rows else empty("None.")
        return f'<div class="table"><h3>{escape(title)}</h3></div>{rendered}'

    return section(
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


def customers(doc: Document) -> str:
    rows = doc["customers"]
    rendered = (
        table(
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
                    pct(r["attainment_pct"]),
                    span(r["first_response_p90_seconds"]),
                    r["update_dues"],
                    r["escalations"],
                )
                for r in rows
            ),
        )
        if rows
        else empty("No tickets in the input.")
    )
    return section("Customers", "Every customer, by customer id.", rendered)


PARTS: Final = (response, first_response, updates, escalations, maintenance, worst, customers)
