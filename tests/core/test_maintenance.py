"""Change management: notices, the five-day notice rule and reminders, through the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from processor.sla import engine
from processor.sla.exceptions import Rejected
from schemas.outputs import data as output_data

from .factories import (
    DAY,
    DEFAULT_POLICY,
    MIN,
    SEC,
    T0,
    H,
    Subject,
    assert_data_includes,
    make_event,
    of_type,
    rfc3339,
)

NOTICE = "maintenance.notice"
REMINDER = "maintenance.reminder"
VIOLATION = "maintenance.lead_time_violation"
CANCELLED = "maintenance.cancelled"
LENGTH = 4 * H  # every window here lasts four hours


def _window(start: datetime) -> dict[str, Any]:
    return {"window_start": rfc3339(start), "window_end": rfc3339(start + LENGTH)}


def _scheduled(start: datetime, kind: str = "planned") -> dict[str, Any]:
    return {
        "kind": kind,
        **_window(start),
        "summary": "core network upgrade",
        "services": ["apn"],
        "customers": ["CUST-1"],
    }


def _schedule(
    lead: timedelta, kind: str = "planned", at: datetime = T0
) -> tuple[Subject, datetime]:
    maintenance = Subject("MNT-1")
    maintenance.send("maintenance.scheduled", at, _scheduled(at + lead, kind))
    return maintenance, at + lead


def _expected(kind: str, start: datetime, lead: timedelta) -> dict[str, Any]:
    return {
        "maintenance_id": "MNT-1",
        "kind": kind,
        "window_start": start,
        "window_end": start + LENGTH,
        "lead_time": lead,
    }


def _types(outputs: list[Any]) -> list[str]:
    return sorted(o.type for o in outputs)


@pytest.mark.parametrize(
    ("lead", "violation"),
    [
        (30 * DAY, False),
        (5 * DAY + SEC, False),
        (5 * DAY, False),  # exactly five days is "at least five days"
        (5 * DAY - SEC, True),
        (2 * DAY, True),
        (1 * H, True),
    ],
    ids=["30d", "5d+1s", "5d", "5d-1s", "2d", "1h"],
)
def test_planned_maintenance_notice_and_lead_time_rule(lead: timedelta, violation: bool) -> None:
    maintenance, start = _schedule(lead)
    outputs = maintenance.outputs
    assert _types(outputs) == sorted([NOTICE, *([VIOLATION] if violation else [])])
    for output in outputs:
        assert output.time == T0
        assert output.subject == "MNT-1"
        assert_data_includes(output, _expected("planned", start, lead))


@pytest.mark.parametrize("lead", [30 * DAY, 5 * DAY, 4 * DAY, 1 * H], ids=str)
def test_emergency_maintenance_is_noticed_but_exempt(lead: timedelta) -> None:
    maintenance, start = _schedule(lead, "emergency")
    (notice,) = maintenance.outputs
    assert notice.type == NOTICE
    assert notice.time == T0
    assert_data_includes(notice, _expected("emergency", start, lead))


@pytest.mark.parametrize("lead", [10 * DAY, 5 * DAY, 3 * DAY, 24 * H + SEC], ids=str)
def test_reminder_fires_once_24h_before_the_window(lead: timedelta) -> None:
    maintenance, start = _schedule(lead)
    announced = len(maintenance.outputs)
    maintenance.advance(start - 24 * H - SEC)
    assert maintenance.outputs[announced:] == []

    decision = maintenance.advance(start - 24 * H)
    (reminder,) = decision.outputs
    assert reminder.type == REMINDER
    assert reminder.time == start - 24 * H
    assert_data_includes(
        reminder,
        {
            "maintenance_id": "MNT-1",
            "kind": "planned",
            "window_start": start,
            "window_end": start + LENGTH,
        },
    )
    assert "lead_time" in output_data(reminder)

    maintenance.advance(start + LENGTH + SEC)
    assert len(of_type(maintenance.outputs, REMINDER)) == 1


def test_reminder_time_is_the_due_instant_even_when_fired_late() -> None:
    maintenance, start = _schedule(10 * DAY)
    maintenance.advance(start - 1 * H)
    (reminder,) = of_type(maintenance.outputs, REMINDER)
    assert reminder.time == start - 24 * H


@pytest.mark.parametrize(
    ("moved_at", "new_lead", "violation"),
    [
        (1 * DAY, 2 * DAY, True),  # moved earlier, too short a notice now
        (1 * DAY, 5 * DAY, False),
        (1 * DAY, 20 * DAY, False),
        (3 * DAY, 4 * DAY + 23 * H, True),
    ],
    ids=["to-2d", "to-5d", "to-20d", "to-4d23h"],
)
def test_rescheduled_is_noticed_and_checked_against_the_new_window(
    moved_at: timedelta, new_lead: timedelta, violation: bool
) -> None:
    maintenance, _ = _schedule(10 * DAY)
    at = T0 + moved_at
    start = at + new_lead
    decision = maintenance.send("maintenance.rescheduled", at, _window(start))
    assert _types(list(decision.outputs)) == sorted([NOTICE, *([VIOLATION] if violation else [])])
    for output in decision.outputs:
        assert output.time == at
        assert_data_includes(output, _expected("planned", start, new_lead))


def test_reschedule_out_of_a_violation() -> None:
    maintenance, _ = _schedule(2 * DAY)
    assert _types(maintenance.outputs) == sorted([NOTICE, VIOLATION])
    at = T0 + 1 * H
    decision = maintenance.send("maintenance.rescheduled", at, _window(T0 + 20 * DAY))
    (notice,) = decision.outputs
    assert notice.type == NOTICE
    assert_data_includes(notice, _expected("planned", T0 + 20 * DAY, 20 * DAY - 1 * H))


def test_rescheduled_emergency_stays_exempt() -> None:
    maintenance, _ = _schedule(2 * DAY, "emergency")
    decision = maintenance.send("maintenance.rescheduled", T0 + 1 * H, _window(T0 + 1 * DAY))
    (notice,) = decision.outputs
    assert notice.type == NOTICE
    assert_data_includes(notice, _expected("emergency", T0 + 1 * DAY, 23 * H))


def test_reschedule_rearms_the_reminder_for_the_new_window() -> None:
    maintenance, old_start = _schedule(10 * DAY)
    new_start = T0 + 4 * DAY
    maintenance.send("maintenance.rescheduled", T0 + 1 * DAY, _window(new_start))
    maintenance.advance(T0 + 30 * DAY)
    reminders = of_type(maintenance.outputs, REMINDER)
    assert [r.time for r in reminders] == [new_start - 24 * H]
    assert_data_includes(reminders[0], {"window_start": new_start})
    assert old_start - 24 * H not in [o.time for o in maintenance.outputs]


def test_reschedule_after_the_reminder_fired_reminds_again() -> None:
    maintenance, old_start = _schedule(10 * DAY)
    maintenance.advance(old_start - 1 * H)
    moved = old_start - 30 * MIN
    new_start = moved + 10 * DAY
    maintenance.send("maintenance.rescheduled", moved, _window(new_start))
    maintenance.advance(new_start + 1 * DAY)
    reminders = of_type(maintenance.outputs, REMINDER)
    assert [r.time for r in reminders] == [old_start - 24 * H, new_start - 24 * H]
    assert_data_includes(reminders[1], {"window_start": new_start})
    assert reminders[0].id != reminders[1].id
    notices = of_type(maintenance.outputs, NOTICE)
    assert len(notices) == 2
    assert notices[0].id != notices[1].id


def test_cancelled_notifies_and_disarms_the_reminder() -> None:
    maintenance, start = _schedule(10 * DAY)
    at = T0 + 2 * DAY
    decision = maintenance.send("maintenance.cancelled", at)
    (cancelled,) = decision.outputs
    assert cancelled.type == CANCELLED
    assert cancelled.time == at
    assert cancelled.subject == "MNT-1"
    assert_data_includes(
        cancelled,
        {
            "maintenance_id": "MNT-1",
            "kind": "planned",
            "window_start": start,
            "window_end": start + LENGTH,
        },
    )
    assert "lead_time" in output_data(cancelled)
    assert maintenance.state is not None  # kept, so that later events can be rejected
    maintenance.advance(start + LENGTH)
    assert of_type(maintenance.outputs, REMINDER) == []


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("maintenance.rescheduled", _window(T0 + 20 * DAY)),
        ("maintenance.cancelled", None),
        ("maintenance.scheduled", _scheduled(T0 + 20 * DAY)),
    ],
    ids=["rescheduled", "cancelled", "scheduled"],
)
def test_events_after_cancel_are_rejected(type_: str, data: dict[str, Any] | None) -> None:
    maintenance, _ = _schedule(10 * DAY)
    maintenance.send("maintenance.cancelled", T0 + 1 * DAY)
    with pytest.raises(Rejected) as info:
        maintenance.send(type_, T0 + 2 * DAY, data, event_id="new-id")
    assert info.value.reason


@pytest.mark.parametrize(
    ("type_", "data"),
    [("maintenance.rescheduled", _window(T0 + 20 * DAY)), ("maintenance.cancelled", None)],
    ids=["rescheduled", "cancelled"],
)
def test_events_for_an_unknown_maintenance_are_rejected(
    type_: str, data: dict[str, Any] | None
) -> None:
    event = make_event(type_, "MNT-UNKNOWN", T0, data)
    with pytest.raises(Rejected) as info:
        engine.decide(None, event, DEFAULT_POLICY)
    assert info.value.reason


@pytest.mark.parametrize(
    ("type_", "data"),
    [
        ("maintenance.scheduled", _scheduled(T0 + 1 * DAY)),
        ("maintenance.rescheduled", _window(T0 + 1 * DAY)),
        ("maintenance.cancelled", None),
    ],
    ids=["scheduled", "rescheduled", "cancelled"],
)
def test_repeated_id_is_ignored(type_: str, data: dict[str, Any] | None) -> None:
    maintenance, _ = _schedule(10 * DAY)  # id MNT-1/e1
    before = maintenance.state
    decision = maintenance.send(type_, T0 + 1 * H, data, event_id="MNT-1/e1")
    assert decision.duplicate is True
    assert decision.outputs == ()
    assert decision.state == before


def test_repeated_reschedule_id_is_ignored() -> None:
    maintenance, _ = _schedule(10 * DAY)
    maintenance.send("maintenance.rescheduled", T0 + 1 * H, _window(T0 + 8 * DAY), event_id="r")
    decision = maintenance.send(
        "maintenance.rescheduled", T0 + 2 * H, _window(T0 + 2 * DAY), event_id="r"
    )
    assert decision.duplicate is True
    assert decision.outputs == ()
    maintenance.advance(T0 + 30 * DAY)
    assert [r.time for r in of_type(maintenance.outputs, REMINDER)] == [T0 + 7 * DAY]


def test_notice_ids_are_deterministic() -> None:
    def run() -> list[str]:
        maintenance, _ = _schedule(3 * DAY)
        maintenance.send("maintenance.rescheduled", T0 + 1 * DAY, _window(T0 + 9 * DAY))
        maintenance.advance(T0 + 9 * DAY)
        maintenance.send("maintenance.cancelled", T0 + 9 * DAY + 1 * H)
        return [o.id for o in maintenance.outputs]

    ids = run()
    assert ids == run()
    assert len(set(ids)) == len(ids) == 5  # notice, violation, notice, reminder, cancelled
