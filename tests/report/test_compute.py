"""The report's figures on small hand-built histories; every expected number is worked out from
the SLA's rules (the default policy, the seed's tables) and the events, not read off the code."""

from __future__ import annotations

from datetime import timedelta

from processor.attainment.compute import compute
from processor.attainment.figures import FIRST_RESPONSE, LEAD_TIME, iso_week, percentile
from processor.attainment.values import Attainment, Outcome, Tally
from processor.sla.vocabulary import Severity, Tier

from .events import EXTENDED, MIN, T0, D, H, Lines, arrival_figures, arrived, figures


def _answered_at(minutes: list[int], severity: str = "high", tier: str = "premium") -> Attainment:
    lines = Lines()
    for n, minute in enumerate(minutes):
        lines.open(f"T-{n}", T0, severity, tier, customer=f"C-{n % 2}")
        lines.add("ticket.responded", f"T-{n}", T0 + minute * MIN)
        lines.add("ticket.resolved", f"T-{n}", T0 + minute * MIN + MIN)
    return figures(lines.in_time_order(), T0 + 3 * H)


def test_a_high_premium_response_is_met_up_to_its_hour_and_breached_after() -> None:
    # high/premium: initial response within 60 minutes; a response on the deadline meets it.
    report = _answered_at([59, 60, 61])
    assert report.overall == Tally(tickets=3, met=2, breached=1, pending=0)
    assert report.overall.attainment == 66.67
    outcome = {f.ticket_id: f.outcome for f in report.worst.first_response}
    assert outcome == {"T-0": Outcome.MET, "T-1": Outcome.MET, "T-2": Outcome.BREACHED}
    (late,) = report.worst.breach_lateness
    assert (late.ticket_id, late.breach_lateness) == ("T-2", MIN)  # breach at 60, answer at 61


def test_the_same_answer_times_against_high_basic_are_all_met() -> None:
    report = _answered_at([59, 61, 119], tier="basic")  # high/basic: 120 minutes
    assert report.overall == Tally(tickets=3, met=3, breached=0, pending=0)
    assert report.worst.breach_lateness == ()


def test_an_unanswered_ticket_is_pending_until_its_target_then_breached() -> None:
    lines = Lines()
    lines.open("N-1", T0, "normal", "basic")  # normal/basic: 8 hours
    within = figures(lines.in_time_order(), T0 + 7 * H)
    assert within.overall == Tally(tickets=1, met=0, breached=0, pending=1)
    assert within.overall.attainment is None
    after = figures(lines.in_time_order(), T0 + 10 * H)
    assert after.overall == Tally(tickets=1, met=0, breached=1, pending=0)
    # Still unanswered at the horizon: late by the horizon's distance from the breach.
    assert after.worst.breach_lateness[0].breach_lateness == 2 * H
    assert not after.worst.breach_lateness[0].answered


def test_tickets_are_grouped_by_the_iso_week_of_their_opening() -> None:
    lines = Lines()
    sunday, monday = T0 + 6 * D + 14 * H, T0 + 7 * D  # 2026-03-08 23:00, 2026-03-09 09:00
    lines.open("W-1", sunday, "low", "select", customer="B")
    lines.add("ticket.responded", "W-1", sunday + 2 * H)  # low: 8 h, met
    lines.open("W-2", monday, "low", "select", customer="A")
    report = figures(lines.in_time_order(), monday + 9 * H)  # W-2 breached at +8h
    assert [(r.week, r.customer, r.tally) for r in report.attainment] == [
        ("2026-W10", "B", Tally(1, 1, 0, 0)),
        ("2026-W11", "A", Tally(1, 0, 1, 0)),
    ]
    assert [(r.week, r.severity) for r in report.by_week_severity] == [
        ("2026-W10", Severity.LOW),
        ("2026-W11", Severity.LOW),
    ]
    assert [(r.customer, r.tally.attainment) for r in report.customers] == [
        ("A", 0.0),
        ("B", 100.0),
    ]


def test_attainment_per_severity_and_tier_in_the_vocabulary_order() -> None:
    lines = Lines()
    lines.open("L", T0, "low", "basic")
    lines.add("ticket.responded", "L", T0 + 9 * H)  # low: 8 h -> breached
    lines.open("U", T0, "urgent", "premium")
    lines.add("ticket.responded", "U", T0 + 10 * MIN)  # urgent: 15 min -> met
    lines.open("U2", T0, "urgent", "select")
    lines.add("ticket.responded", "U2", T0 + 16 * MIN)  # breached
    lines.open("U3", T0, "urgent", "premium")
    lines.add("ticket.responded", "U3", T0 + 15 * MIN)  # met, on the deadline
    report = figures(lines.in_time_order(), T0 + 10 * H)
    assert [(r.severity, r.tier, r.tally) for r in report.by_severity_tier] == [
        (Severity.URGENT, Tier.PREMIUM, Tally(2, 2, 0, 0)),
        (Severity.URGENT, Tier.SELECT, Tally(1, 0, 1, 0)),
        (Severity.LOW, Tier.BASIC, Tally(1, 0, 1, 0)),
    ]


def test_update_dues_every_two_hours_for_an_urgent_ticket_left_without_updates() -> None:
    lines = Lines()
    lines.open("U", T0, "urgent", "premium", customer="ACME")
    lines.add("ticket.responded", "U", T0 + 10 * MIN)  # the update clock starts: every 2 h
    lines.open("K", T0, "urgent", "premium", customer="ACME")
    lines.add("ticket.responded", "K", T0 + 10 * MIN)
    lines.add("ticket.updated", "K", T0 + 2 * H)  # each update within 2 h: none missed
    lines.add("ticket.updated", "K", T0 + 4 * H)
    lines.add("ticket.resolved", "K", T0 + 5 * H)
    report = figures(lines.in_time_order(), T0 + 5 * H)
    # U: due at 2:10 and 4:10 (each fired window restarts the next), the third at 6:10 is later.
    assert [(r.week, r.severity, r.update_dues, r.tickets) for r in report.update_dues] == [
        ("2026-W10", Severity.URGENT, 2, 1)
    ]
    (row,) = report.missed_updates
    assert (row.tickets, row.tickets_with_missed_update, row.update_dues) == (2, 1, 2)
    assert [(f.ticket_id, f.update_dues) for f in report.worst.update_dues] == [("U", 2)]
    assert report.customers[0].update_dues == 2


def test_escalations_on_the_ladder_and_a_catch_up_after_a_severity_raise() -> None:
    lines = Lines()
    lines.open("U", T0, "urgent", "premium")  # urgent ladder: steps at 0, 2 h, 4 h
    lines.add("ticket.responded", "U", T0 + 5 * MIN)
    lines.open("R", T0, "normal", "premium")  # no ladder for normal
    lines.add("ticket.responded", "R", T0 + 30 * MIN)
    lines.add("ticket.severity_changed", "R", T0 + 3 * H, {"severity": "urgent"})
    report = figures(lines.in_time_order(), T0 + 5 * H)
    # U: each step on time. R: steps 1 and 2 were due before the raise, so both fire at 3 h
    # (elapsed 3 h, beyond the ladder), step 3 at 4 h on time.
    rows = [(r.severity, r.step, r.escalations, r.after, r.elapsed_p50, r.elapsed_max,
             r.beyond_ladder) for r in report.escalations]  # fmt: skip
    assert rows == [
        (Severity.URGENT, 1, 2, timedelta(0), timedelta(0), 3 * H, 1),
        (Severity.URGENT, 2, 2, 2 * H, 2 * H, 3 * H, 1),
        (Severity.URGENT, 3, 2, 4 * H, 4 * H, 4 * H, 0),
    ]
    assert report.acknowledgements == ()  # the default policy asks for none


def test_acknowledgements_latency_and_missed_windows() -> None:
    # extended policy: urgent steps must be acknowledged within 15 minutes, repeated up to 3
    # times (a window each), so an ignored step misses 4 windows: at 15, 30, 45 and 60 min.
    lines = Lines()
    for subject, ack in (("A", 10), ("B", 4), ("C", None)):
        lines.open(subject, T0, "urgent", "premium")
        lines.add("ticket.responded", subject, T0 + 5 * MIN)
        if ack is not None:
            lines.add("ticket.escalation_acknowledged", subject, T0 + ack * MIN, {"step": 1})
        lines.add("ticket.resolved", subject, T0 + 90 * MIN)
    report = figures(lines.in_time_order(), T0 + 2 * H, EXTENDED)
    (row,) = report.acknowledgements
    assert (row.severity, row.step, row.acknowledged, row.windows_missed) == (
        Severity.URGENT, 1, 2, 4,
    )  # fmt: skip
    assert (row.latency_p50, row.latency_p90) == (4 * MIN, 10 * MIN)


def test_a_retracted_breach_does_not_count() -> None:
    # extended policy has corrections: a response stamped at 59 min that arrives at 70 min,
    # after the breach fired at 60, withdraws the breach: the ticket met its target.
    lines = Lines()
    lines.open("T", T0, "high", "premium")
    answer = lines.add("ticket.responded", "T", T0 + 59 * MIN)
    stream = [lines.lines[0], arrived(T0 + 70 * MIN, answer)]
    report = arrival_figures(stream, T0 + 80 * MIN, EXTENDED)
    assert report.retracted >= 1
    assert report.overall == Tally(tickets=1, met=1, breached=0, pending=0)
    assert report.worst.breach_lateness == ()
    # Without the late answer, the same ticket is breached: the retraction made the difference.
    unanswered = arrival_figures(stream[:1], T0 + 80 * MIN, EXTENDED)
    assert unanswered.overall == Tally(tickets=1, met=0, breached=1, pending=0)


def test_maintenance_lead_times_and_short_notice() -> None:
    lines = Lines()
    lines.schedule("M-short", T0, T0 + 3 * D)  # planned, 3 days: under the 5-day minimum
    lines.schedule("M-ok", T0, T0 + 6 * D)  # 6 days
    lines.schedule("M-emergency", T0, T0 + H, kind="emergency")  # exempt from the minimum
    start = T0 + 5 * D
    lines.add("maintenance.rescheduled", "M-ok", T0 + D, {"window_start": f"{start:%Y-%m-%dT%H:%M:%SZ}",
              "window_end": f"{start + 2 * H:%Y-%m-%dT%H:%M:%SZ}"})  # fmt: skip
    report = figures(lines.in_time_order(), T0 + 2 * D)
    maintenance = report.maintenance
    leads = sorted((n.maintenance_id, n.revision, n.lead_time, n.short_notice)
                   for n in maintenance.notices)  # fmt: skip
    assert leads == [
        ("M-emergency", 1, H, False),
        ("M-ok", 1, 6 * D, False),
        ("M-ok", 2, 4 * D, True),  # rescheduled a day later to 5 days after T0: 4 days ahead
        ("M-short", 1, 3 * D, True),
    ]
    assert maintenance.short_notice == 2
    assert maintenance.minimum_notice == 5 * D
    # <1d: the emergency; 3-4d: M-short; 4-5d: M-ok's revision 2; 5-7d: M-ok's first notice.
    assert maintenance.lead_buckets == (1, 0, 0, 1, 1, 1, 0, 0)
    # Reminders 24 h before a window: M-short's falls on the horizon (T0 + 2 days) and fires;
    # M-emergency's had passed when it was announced; M-ok's (T0 + 4 days) is beyond the horizon.
    assert maintenance.reminders == 1


def test_first_response_distribution_per_severity() -> None:
    lines = Lines()
    for n, minutes in enumerate([5, 15, 16, 45, 90, 600]):
        lines.open(f"H-{n}", T0, "low", "premium")
        lines.add("ticket.responded", f"H-{n}", T0 + minutes * MIN)
    report = figures(lines.in_time_order(), T0 + 12 * H)
    low, every = report.first_response
    assert low.severity is Severity.LOW
    assert every.severity is None
    # buckets: 0-15m: 5, 15 | 15-30m: 16 | 30m-1h: 45 | 1-2h: 90 | 8h-1d: 600 (10 h)
    assert low.buckets == (2, 1, 1, 1, 0, 0, 1, 0, 0)
    assert (low.p50, low.p90, low.p99) == (16 * MIN, 600 * MIN, 600 * MIN)  # ranks 3, 6, 6
    assert every.buckets == low.buckets
    assert [f.ticket_id for f in report.worst.first_response][:2] == ["H-5", "H-4"]


def test_worst_lists_are_cut_at_top_and_ties_go_by_ticket_id() -> None:
    lines = Lines()
    for subject in ("Z", "B", "M", "A"):
        lines.open(subject, T0, "high", "premium")
        lines.add("ticket.responded", subject, T0 + 2 * H)  # each 1 h late
    report = figures(lines.in_time_order(), T0 + 3 * H, top=3)
    assert [f.ticket_id for f in report.worst.breach_lateness] == ["A", "B", "M"]


def test_nothing_to_report() -> None:
    report = compute({}, [], None)
    assert report.overall == Tally(0, 0, 0, 0)
    assert report.attainment == ()
    assert report.customers == ()
    assert report.escalations == ()
    (every,) = report.first_response
    assert every.responded == 0
    assert every.p50 is None
    assert report.maintenance.lead_buckets == (0,) * len(LEAD_TIME.labels)


def test_nearest_rank_percentiles() -> None:
    values = [n * MIN for n in range(1, 11)]
    assert [percentile(values, p) for p in (1, 50, 90, 99, 100)] == [
        MIN, 5 * MIN, 9 * MIN, 10 * MIN, 10 * MIN,
    ]  # fmt: skip
    assert percentile([], 50) is None


def test_bucket_edges() -> None:
    assert FIRST_RESPONSE.index(15 * MIN) == 0
    assert FIRST_RESPONSE.index(15 * MIN + timedelta(seconds=1)) == 1
    assert FIRST_RESPONSE.index(3 * D) == len(FIRST_RESPONSE.labels) - 1
    assert LEAD_TIME.index(5 * D) == LEAD_TIME.labels.index("5-7d")
    assert LEAD_TIME.index(-H) == 0
    midnight = T0.replace(hour=0)  # Monday: weeks turn at 00:00 UTC
    assert (iso_week(midnight - timedelta(microseconds=1)), iso_week(midnight)) == (
        "2026-W09", "2026-W10",
    )  # fmt: skip
