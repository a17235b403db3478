"""A ticket's timeline from replay: events, clock segments, pending deadlines, outputs, refusals."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import orjson

from processor.replay import read_arrivals, read_events, replay, replay_arrivals
from processor.sla.timeline import timeline
from tests.core.factories import MIN, T0, H, envelope, opened_data, rfc3339
from tests.core.test_beyond_the_seed import EXTENDED, OFFICE


def line(n: int, type_: str, at: datetime, data: Any = None, subject: str = "T-1") -> bytes:
    return orjson.dumps(envelope(type_, subject, at, data, event_id=f"e{n}"))


def answer(lines: list[bytes], policy: Any, until: datetime) -> dict[str, Any]:
    done = replay(read_events(lines, io.StringIO()), policy, until, io.StringIO(), "T-1")
    return timeline("T-1", done.timeline, 0, done.tickets.get("T-1"), policy, until)


def test_segments_show_pauses_stops_and_out_of_hours_time() -> None:
    monday_4pm = datetime.fromisoformat("2026-03-02T16:00:00+00:00")
    lines = [
        line(1, "ticket.opened", monday_4pm, opened_data("premium", "normal")),
        line(2, "ticket.responded", monday_4pm + 30 * MIN),
        line(3, "ticket.status_changed", monday_4pm + H, {"status": "pending_customer"}),
        line(4, "ticket.status_changed", monday_4pm + 18 * H, {"status": "in_progress"}),
        line(5, "ticket.resolved", monday_4pm + 19 * H),
    ]
    found = answer(lines, OFFICE, monday_4pm + 20 * H)
    segments = [(s["state"], s["start"], s["end"]) for s in found["segments"]]
    assert segments == [
        ("running", "2026-03-02T16:00:00Z", "2026-03-02T17:00:00Z"),
        # paused at 17:00 as the office closes: the night is out of hours, paused or not
        ("out_of_hours", "2026-03-02T17:00:00Z", "2026-03-03T09:00:00Z"),
        ("paused", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"),
        ("running", "2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z"),
        ("stopped", "2026-03-03T11:00:00Z", "2026-03-03T12:00:00Z"),
    ]
    assert found["phase"] == "resolved"
    assert [d["rule"] for d in found["deadlines"]] == ["survey"]


def test_pending_deadlines_name_their_rules_earliest_first() -> None:
    lines = [line(1, "ticket.opened", T0, opened_data("premium", "urgent"))]
    found = answer(lines, EXTENDED, T0 + MIN)
    rules = [(d["rule"], d.get("step")) for d in found["deadlines"]]
    assert rules == [
        ("initial_response", None),
        ("acknowledgement", 1),
        ("escalation", 2),
        ("escalation", 3),
    ]
    assert found["deadlines"][0]["due"] == rfc3339(T0 + 15 * MIN)
    assert "PT15M" in found["deadlines"][0]["detail"]


def test_outputs_carry_their_due_time_and_lateness_and_refusals_their_reason() -> None:
    opened = line(1, "ticket.opened", T0, opened_data("premium", "urgent"))
    late = {"arrived_at": rfc3339(T0 + 20 * MIN),
            "event": orjson.loads(line(2, "ticket.responded", T0 + 14 * MIN))}  # fmt: skip
    refused = line(3, "ticket.reopened", T0 + 21 * MIN)
    lines = [opened, orjson.dumps(late), refused]
    done = replay_arrivals(
        read_arrivals(lines, io.StringIO()), EXTENDED, T0 + 21 * MIN, io.StringIO(), "T-1"
    )
    found = timeline("T-1", done.timeline, 0, done.tickets["T-1"], EXTENDED, T0 + 21 * MIN)
    by_type = {o["type"]: o for o in found["outputs"]}
    assert by_type["sla.breach"]["lateness"] == "PT0S"
    retraction = by_type["sla.retraction"]
    assert retraction["lateness"] == "PT5M"  # emitted when the late response arrived
    assert retraction["data"]["retracted_id"] == by_type["sla.breach"]["id"]
    assert found["rejected"] == [{"id": "e3", "type": "ticket.reopened",
                                  "time": rfc3339(T0 + 21 * MIN), "reason": "not_resolved"}]  # fmt: skip


def test_events_of_other_tickets_and_of_unknown_ones_stay_out() -> None:
    lines = [
        line(1, "ticket.updated", T0),  # T-1 not opened yet: refused, not recorded
        line(2, "ticket.opened", T0, opened_data("basic", "low"), subject="T-2"),
        line(3, "ticket.opened", T0 + MIN, opened_data("basic", "low")),
    ]
    found = answer(lines, EXTENDED, T0 + 2 * MIN)
    assert [e["id"] for e in found["events"]] == ["e3"]
    assert found["rejected"] == []


def test_a_ticket_without_recorded_entries_has_a_timeline_of_its_state() -> None:
    """A state stored before timelines were (an earlier release's) has no entries: its
    timeline is its state and pending deadlines, no segments (it raised on the empty list)."""
    lines = [line(1, "ticket.opened", T0, opened_data("premium", "high"))]
    state = replay(read_events(lines, io.StringIO()), EXTENDED, T0, io.StringIO()).tickets["T-1"]
    found = timeline("T-1", [], 0, state, EXTENDED, T0 + MIN)
    assert (found["phase"], found["segments"], found["events"]) == ("open", [], [])
    assert found["deadlines"]
