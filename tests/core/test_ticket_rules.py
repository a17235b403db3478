"""The contract's "Semantics of the default policy", one rule at a time, through the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.sla import engine
from processor.sla.exceptions import Rejected
from schemas.outputs import cloudevent
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
    breach_times,
    escalation_keys,
    make_event,
    of_type,
    parse_time,
    update_keys,
)

URGENT_STEPS = {1: timedelta(0), 2: 2 * H, 3: 4 * H}
HIGH_STEPS = URGENT_STEPS  # the same elapsed times, different actions
FAR = T0 + 60 * DAY


# -- clock start and initial response ----------------------------------------------------------


def test_clock_start_is_the_opened_event_time_not_the_processing_time() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    # The engine learns of nothing else until three hours later: every instant is still T0-based.
    ticket.advance(T0 + 3 * H)
    assert breach_times(ticket.outputs) == [T0 + 15 * MIN]
    assert escalation_keys(ticket.outputs) == [("urgent", 1, T0), ("urgent", 2, T0 + 2 * H)]


def test_next_deadline_after_opening_is_the_response_deadline() -> None:
    ticket = Subject()
    decision = ticket.open(T0, "normal", "select")
    assert decision.outputs == ()
    assert decision.next_deadline == T0 + 6 * H


@pytest.mark.parametrize(
    ("respond_after", "breached"),
    [
        (1 * MIN, False),
        (15 * MIN - SEC, False),
        (15 * MIN, False),  # a response at the deadline meets it
        (15 * MIN + SEC, True),  # one second late breaches
        (2 * H, True),
    ],
    ids=["early", "second-before", "at-deadline", "second-late", "hours-late"],
)
def test_response_against_the_deadline(respond_after: timedelta, breached: bool) -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + respond_after)
    ticket.advance(FAR)
    assert breach_times(ticket.outputs) == ([T0 + 15 * MIN] if breached else [])


def test_late_response_emits_the_breach_before_anything_else_at_the_deadline_time() -> None:
    ticket = Subject()
    ticket.open(T0, "high", "basic")
    decision = ticket.send("ticket.responded", T0 + 3 * H)
    breaches = of_type(decision.outputs, "sla.breach")
    assert [b.time for b in breaches] == [T0 + 2 * H]
    assert [o.time for o in decision.outputs] == sorted(o.time for o in decision.outputs)


def test_escalation_ladder_keeps_running_after_the_response() -> None:
    # "each step of the escalation matrix, at its elapsed time, while the ticket is not
    # resolved or closed": a response does not stop it.
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [
        ("urgent", n, T0 + after) for n, after in URGENT_STEPS.items()
    ]


# -- the update clock --------------------------------------------------------------------------


def test_update_clock_starts_at_response_and_repeats_from_each_due_time() -> None:
    responded = T0 + 7 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.advance(responded + 6 * H)
    assert update_keys(ticket.outputs) == [
        (1, responded + 2 * H),
        (2, responded + 4 * H),
        (3, responded + 6 * H),
    ]
    for update in of_type(ticket.outputs, "sla.update_due"):
        assert update.time == parse_time(output_data(update)["due_at"])


def test_update_clock_repeats_for_high_daily() -> None:
    responded = T0 + 30 * MIN
    ticket = Subject()
    ticket.open(T0, "high", "select")
    ticket.send("ticket.responded", responded)
    ticket.advance(responded + 3 * DAY)
    assert update_keys(ticket.outputs) == [
        (1, responded + DAY),
        (2, responded + 2 * DAY),
        (3, responded + 3 * DAY),
    ]


def test_no_update_due_before_the_response() -> None:
    # The update clock starts at ticket.responded; the unanswered ticket only breaches.
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.advance(T0 + 10 * H)
    assert update_keys(ticket.outputs) == []


def test_update_restarts_the_update_clock() -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.send("ticket.updated", responded + 1 * H, {"agent_id": "A-1"})
    ticket.advance(responded + 3 * H - SEC)
    assert update_keys(ticket.outputs) == []
    ticket.advance(responded + 3 * H)
    assert update_keys(ticket.outputs) == [(1, responded + 3 * H)]


def test_update_after_missed_windows_restarts_the_cycle_count() -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    updated = responded + 5 * H  # windows missed at +2 h and +4 h
    ticket.send("ticket.updated", updated)
    ticket.advance(updated + 4 * H)
    assert update_keys(ticket.outputs) == [
        (1, responded + 2 * H),
        (2, responded + 4 * H),
        (1, updated + 2 * H),
        (2, updated + 4 * H),
    ]


def test_update_at_the_instant_a_window_expires_meets_it() -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.send("ticket.updated", responded + 2 * H)
    ticket.advance(responded + 4 * H - SEC)
    assert update_keys(ticket.outputs) == []


@pytest.mark.parametrize(
    ("pause_at", "resume_at", "first_due"),
    [
        # paused 1 h inside the first window: the window is extended by 1 h
        (30 * MIN, 90 * MIN, 3 * H),
        # paused 4 h across the instant the window would have expired
        (1 * H, 5 * H, 6 * H),
        # paused and resumed at once: nothing to extend
        (1 * H, 1 * H, 2 * H),
    ],
    ids=["within-window", "across-expiry", "zero-length"],
)
def test_pausing_status_extends_the_update_window(
    pause_at: timedelta, resume_at: timedelta, first_due: timedelta
) -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.send("ticket.status_changed", responded + pause_at, {"status": "pending_customer"})
    ticket.send("ticket.status_changed", responded + resume_at, {"status": "in_progress"})
    ticket.advance(responded + first_due - SEC)
    assert update_keys(ticket.outputs) == []
    ticket.advance(responded + first_due + 2 * H)
    assert update_keys(ticket.outputs) == [
        (1, responded + first_due),
        (2, responded + first_due + 2 * H),
    ]


def test_nothing_update_due_while_paused() -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.send("ticket.status_changed", responded + 1 * H, {"status": "pending_customer"})
    ticket.advance(responded + 5 * DAY)
    assert update_keys(ticket.outputs) == []


def test_response_while_paused_starts_the_window_at_resume() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.status_changed", T0 + 5 * MIN, {"status": "pending_customer"})
    ticket.send("ticket.responded", T0 + 10 * MIN)
    resumed = T0 + 3 * H
    ticket.send("ticket.status_changed", resumed, {"status": "in_progress"})
    ticket.advance(resumed + 2 * H - SEC)
    assert update_keys(ticket.outputs) == []
    ticket.advance(resumed + 2 * H)
    assert update_keys(ticket.outputs) == [(1, resumed + 2 * H)]


def test_a_non_pausing_status_does_not_pause() -> None:
    responded = T0 + 10 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.send("ticket.status_changed", responded + 30 * MIN, {"status": "in_progress"})
    ticket.advance(responded + 2 * H)
    assert update_keys(ticket.outputs) == [(1, responded + 2 * H)]


def test_pausing_status_does_not_pause_the_escalation_ladder() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.status_changed", T0 + 10 * MIN, {"status": "pending_customer"})
    ticket.advance(T0 + 5 * H)
    assert escalation_keys(ticket.outputs) == [
        ("urgent", n, T0 + after) for n, after in URGENT_STEPS.items()
    ]


# -- resolve and close -------------------------------------------------------------------------


@pytest.mark.parametrize("respond", [True, False], ids=["responded", "unanswered"])
@pytest.mark.parametrize("severity", ["urgent", "high", "normal", "low"])
def test_resolve_stops_every_clock(severity: str, respond: bool) -> None:
    resolved = T0 + 12 * MIN
    ticket = Subject()
    ticket.open(T0, severity)
    if respond:
        ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.resolved", resolved)
    ticket.advance(FAR)
    assert [o for o in ticket.outputs if o.time > resolved] == []
    assert breach_times(ticket.outputs) == []


def test_nothing_emitted_after_resolve_until_reopen() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.resolved", T0 + 1 * H)
    ticket.send("ticket.updated", T0 + 3 * H)  # accepted, starts no clock
    ticket.send("ticket.status_changed", T0 + 4 * H, {"status": "in_progress"})
    ticket.advance(T0 + 10 * DAY)
    assert [o for o in ticket.outputs if o.time > T0 + 1 * H] == []


@pytest.mark.parametrize(
    ("severity", "respond", "resolve_at", "cancelled"),
    [
        ("urgent", True, 2 * H, ("sla.escalation", 2)),
        ("high", True, 4 * H, ("sla.escalation", 3)),
        ("urgent", False, 15 * MIN, ("sla.breach", None)),
        ("high", False, 60 * MIN, ("sla.breach", None)),
        ("urgent", True, 5 * MIN + 2 * H, ("sla.update_due", 1)),
    ],
    ids=["urgent-step-2", "high-step-3", "urgent-breach", "high-breach", "urgent-update"],
)
@pytest.mark.parametrize("close", [False, True], ids=["resolved", "closed"])
def test_stop_at_the_very_instant_of_a_deadline_cancels_it(
    severity: str,
    respond: bool,
    resolve_at: timedelta,
    cancelled: tuple[str, int | None],
    close: bool,
) -> None:
    ticket = Subject()
    ticket.open(T0, severity)
    if respond:
        ticket.send("ticket.responded", T0 + 5 * MIN)
    decision = ticket.send("ticket.closed" if close else "ticket.resolved", T0 + resolve_at)
    assert [o for o in decision.outputs if o.time >= T0 + resolve_at] == []
    if not close:
        ticket.advance(FAR)
    type_, number = cancelled
    fired = [
        o
        for o in of_type(ticket.outputs, type_)
        if number is None or output_data(o).get("step", output_data(o).get("cycle")) == number
    ]
    assert fired == []
    assert [o for o in ticket.outputs if o.time >= T0 + resolve_at] == []


def test_close_stops_everything() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.closed", T0 + 1 * H)
    assert ticket.state is not None
    decision = ticket.advance(T0 + 1 * DAY)
    assert decision.outputs == ()
    assert [o for o in ticket.outputs if o.time > T0 + 1 * H] == []


LATER_EVENTS: list[tuple[str, dict[str, Any] | None]] = [
    ("ticket.opened", {"customer_id": "CUST-1", "support_tier": "premium", "severity": "low"}),
    ("ticket.severity_changed", {"severity": "urgent"}),
    ("ticket.responded", None),
    ("ticket.updated", {"agent_id": "A-1"}),
    ("ticket.status_changed", {"status": "in_progress"}),
    ("ticket.resolved", None),
    ("ticket.closed", None),
    ("ticket.reopened", None),
]


@pytest.mark.parametrize(("type_", "data"), LATER_EVENTS, ids=[t for t, _ in LATER_EVENTS])
@pytest.mark.parametrize("resolved_first", [False, True], ids=["open", "resolved"])
def test_events_after_close_are_rejected(
    type_: str, data: dict[str, Any] | None, resolved_first: bool
) -> None:
    ticket = Subject()
    ticket.open(T0, "high")
    if resolved_first:
        ticket.send("ticket.resolved", T0 + 30 * MIN)
    ticket.send("ticket.closed", T0 + 1 * H)
    with pytest.raises(Rejected) as info:
        ticket.send(type_, T0 + 2 * H, data, event_id="a-new-id")
    assert info.value.reason == "ticket_closed"


@pytest.mark.parametrize("repeated", ["TCK-1/e1", "TCK-1/e2", "TCK-1/e3"], ids=str)
def test_repeated_id_after_close_is_ignored(repeated: str) -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")  # TCK-1/e1
    ticket.send("ticket.responded", T0 + 5 * MIN)  # TCK-1/e2
    ticket.send("ticket.closed", T0 + 1 * H)  # TCK-1/e3
    before = ticket.state
    decision = ticket.send("ticket.updated", T0 + 2 * H, event_id=repeated)
    assert decision.duplicate is True
    assert decision.outputs == ()
    assert decision.state == before


# -- reopen ------------------------------------------------------------------------------------


def test_reopen_starts_a_new_cycle_of_the_ladder_and_the_update_clock() -> None:
    reopened = T0 + 3 * H
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.resolved", T0 + 1 * H)
    first_cycle = list(ticket.outputs)
    assert escalation_keys(first_cycle) == [("urgent", 1, T0)]

    decision = ticket.send("ticket.reopened", reopened)
    assert escalation_keys(decision.outputs) == [("urgent", 1, reopened)]
    ticket.advance(reopened + 4 * H)
    second_cycle = ticket.outputs[len(first_cycle) :]
    assert escalation_keys(second_cycle) == [
        ("urgent", n, reopened + after) for n, after in URGENT_STEPS.items()
    ]
    assert update_keys(second_cycle) == [(1, reopened + 2 * H), (2, reopened + 4 * H)]
    assert breach_times(ticket.outputs) == []  # the initial response was given in cycle 1
    assert len({o.id for o in ticket.outputs}) == len(ticket.outputs)


def test_reopened_ladder_actions_are_the_full_step_one() -> None:
    ticket = Subject()
    ticket.open(T0, "high", "basic", customer_id="CUST-9")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.resolved", T0 + 1 * H)
    (step_one,) = ticket.send("ticket.reopened", T0 + 1 * DAY).outputs
    assert step_one.type == "sla.escalation"
    assert step_one.time == T0 + 1 * DAY
    assert_data_includes(
        step_one,
        {
            "ticket_id": "TCK-1",
            "customer_id": "CUST-9",
            "severity": "high",
            "support_tier": "basic",
            "step": 1,
            "after": timedelta(0),
        },
    )
    assert output_data(step_one)["actions"] == [
        {"role": "tier1", "action": "route"},
        {"role": "support_manager", "action": "notify"},
    ]


def test_resolve_reopen_twice_gives_three_cycles_with_distinct_ids() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    for n in range(2):
        ticket.send("ticket.resolved", T0 + (10 * n + 1) * H)
        ticket.send("ticket.reopened", T0 + (10 * n + 2) * H)
    step_ones = [
        o for o in of_type(ticket.outputs, "sla.escalation") if output_data(o)["step"] == 1
    ]
    assert [o.time for o in step_ones] == [T0, T0 + 2 * H, T0 + 12 * H]
    assert len({o.id for o in step_ones}) == 3


# -- severity changes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened", "tier", "change_at", "new", "due"),
    [
        # upgrade: min(current deadline, change time + new target)
        ("normal", "premium", 1 * H, "urgent", 1 * H + 15 * MIN),  # the new target is sooner
        ("high", "basic", 115 * MIN, "urgent", 2 * H),  # the current deadline is sooner
        ("low", "select", 30 * MIN, "high", 30 * MIN + 90 * MIN),
        ("low", "basic", 7 * H, "normal", 8 * H),  # min(8 h, 7 h + 8 h)
        # downgrade: clock start + new target
        ("urgent", "premium", 5 * MIN, "normal", 4 * H),
        ("high", "basic", 1 * H, "low", 8 * H),
        ("urgent", "select", 10 * MIN, "high", 90 * MIN),
        ("normal", "premium", 3 * H, "low", 8 * H),
    ],
    ids=[
        "normal-to-urgent",
        "high-to-urgent-keeps-current",
        "low-to-high",
        "low-to-normal-keeps-current",
        "urgent-to-normal",
        "high-to-low",
        "urgent-to-high",
        "normal-to-low",
    ],
)
def test_severity_change_retargets_the_response_deadline(
    opened: str, tier: str, change_at: timedelta, new: str, due: timedelta
) -> None:
    ticket = Subject()
    ticket.open(T0, opened, tier)
    ticket.send("ticket.severity_changed", T0 + change_at, {"severity": new})
    ticket.advance(T0 + due - SEC)
    assert breach_times(ticket.outputs) == []
    ticket.advance(FAR)
    (breach,) = of_type(ticket.outputs, "sla.breach")
    assert breach.time == T0 + due
    assert_data_includes(
        breach,
        {"severity": new, "support_tier": tier, "target": "initial_response", "due_at": T0 + due},
    )


def test_response_one_second_after_the_upgraded_deadline_breaches() -> None:
    ticket = Subject()
    ticket.open(T0, "normal", "premium")
    ticket.send("ticket.severity_changed", T0 + 1 * H, {"severity": "urgent"})
    ticket.send("ticket.responded", T0 + 1 * H + 15 * MIN + SEC)
    assert breach_times(ticket.outputs) == [T0 + 1 * H + 15 * MIN]


def test_severity_change_after_a_breach_does_not_breach_again() -> None:
    ticket = Subject()
    ticket.open(T0, "normal", "premium")
    ticket.advance(T0 + 5 * H)
    ticket.send("ticket.severity_changed", T0 + 5 * H, {"severity": "urgent"})
    ticket.send("ticket.severity_changed", T0 + 6 * H, {"severity": "low"})
    ticket.advance(FAR)
    assert breach_times(ticket.outputs) == [T0 + 4 * H]


def test_severity_change_after_the_response_does_not_breach() -> None:
    ticket = Subject()
    ticket.open(T0, "low", "basic")
    ticket.send("ticket.responded", T0 + 1 * H)
    ticket.send("ticket.severity_changed", T0 + 2 * H, {"severity": "urgent"})
    ticket.advance(FAR)
    assert breach_times(ticket.outputs) == []


@pytest.mark.parametrize(
    ("opened", "change_at", "new", "expected"),
    [
        # passed steps of the new ladder at once at the change time, the rest at clock start + after
        ("normal", 3 * H, "urgent", [(1, 3 * H), (2, 3 * H), (3, 4 * H)]),
        ("normal", 5 * H, "urgent", [(1, 5 * H), (2, 5 * H), (3, 5 * H)]),
        ("low", 1 * H, "high", [(1, 1 * H), (2, 2 * H), (3, 4 * H)]),
        ("normal", 2 * H, "high", [(1, 2 * H), (2, 2 * H), (3, 4 * H)]),  # step 2 due exactly now
        ("low", 10 * DAY, "urgent", [(1, 10 * DAY), (2, 10 * DAY), (3, 10 * DAY)]),
    ],
    ids=["at-3h", "at-5h", "low-to-high", "at-a-step", "days-later"],
)
def test_new_ladder_is_measured_from_the_clock_start(
    opened: str, change_at: timedelta, new: str, expected: list[tuple[int, timedelta]]
) -> None:
    ticket = Subject()
    ticket.open(T0, opened)
    decision = ticket.send("ticket.severity_changed", T0 + change_at, {"severity": new})
    at_once = [(n, T0 + after) for n, after in expected if after == change_at]
    assert [(s, t) for _, s, t in escalation_keys(decision.outputs)] == at_once
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [(new, n, T0 + after) for n, after in expected]


def test_upgrade_drops_the_pending_steps_of_the_old_severity() -> None:
    ticket = Subject()
    ticket.open(T0, "high")
    ticket.send("ticket.severity_changed", T0 + 1 * H, {"severity": "urgent"})
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [
        ("high", 1, T0),
        ("urgent", 1, T0 + 1 * H),
        ("urgent", 2, T0 + 2 * H),
        ("urgent", 3, T0 + 4 * H),
    ]


def test_downgrade_drops_the_pending_steps_of_the_old_severity() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.severity_changed", T0 + 3 * H, {"severity": "high"})
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [
        ("urgent", 1, T0),
        ("urgent", 2, T0 + 2 * H),
        ("high", 1, T0 + 3 * H),
        ("high", 2, T0 + 3 * H),
        ("high", 3, T0 + 4 * H),
    ]


@pytest.mark.parametrize("lower", ["normal", "low"])
def test_downgrade_to_a_severity_without_ladder_stops_escalating(lower: str) -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN)
    ticket.send("ticket.severity_changed", T0 + 1 * H, {"severity": lower})
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [("urgent", 1, T0)]


def test_no_step_twice_per_cycle_across_severity_changes() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.severity_changed", T0 + 1 * H, {"severity": "high"})
    ticket.send("ticket.severity_changed", T0 + 90 * MIN, {"severity": "urgent"})
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [
        ("urgent", 1, T0),
        ("high", 1, T0 + 1 * H),
        ("urgent", 2, T0 + 2 * H),
        ("urgent", 3, T0 + 4 * H),
    ]


def test_no_step_twice_when_switching_back_after_steps_passed() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.advance(T0 + 3 * H)  # urgent 1 and 2
    ticket.send("ticket.severity_changed", T0 + 3 * H, {"severity": "high"})  # high 1, 2; 3 at 4 h
    ticket.send("ticket.severity_changed", T0 + 5 * H, {"severity": "urgent"})  # urgent 3 only
    ticket.send("ticket.severity_changed", T0 + 6 * H, {"severity": "high"})  # nothing left
    ticket.send("ticket.severity_changed", T0 + 7 * H, {"severity": "urgent"})  # nothing left
    ticket.advance(FAR)
    assert escalation_keys(ticket.outputs) == [
        ("urgent", 1, T0),
        ("urgent", 2, T0 + 2 * H),
        ("high", 1, T0 + 3 * H),
        ("high", 2, T0 + 3 * H),
        ("high", 3, T0 + 4 * H),
        ("urgent", 3, T0 + 5 * H),
    ]


def test_advancing_twice_emits_nothing_twice() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 20 * MIN)
    first = ticket.advance(T0 + 5 * H)
    assert first.outputs != ()
    assert ticket.advance(T0 + 5 * H).outputs == ()
    assert ticket.advance(T0 + 5 * H + SEC).outputs == ()


# -- rejected and ignored events ---------------------------------------------------------------


@pytest.mark.parametrize(("type_", "data"), LATER_EVENTS[1:], ids=[t for t, _ in LATER_EVENTS[1:]])
def test_events_of_a_never_opened_ticket_are_rejected(
    type_: str, data: dict[str, Any] | None
) -> None:
    event = make_event(type_, "TCK-NEVER", T0, data)
    with pytest.raises(Rejected) as info:
        engine.decide(None, event, DEFAULT_POLICY)
    assert info.value.reason == "unknown_ticket"


@pytest.mark.parametrize(
    ("type_", "data"),
    [*LATER_EVENTS[1:6], LATER_EVENTS[0]],
    ids=[t for t, _ in [*LATER_EVENTS[1:6], LATER_EVENTS[0]]],
)
def test_repeated_event_id_is_ignored(type_: str, data: dict[str, Any] | None) -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    first = ticket.send("ticket.responded", T0 + 5 * MIN, event_id="dup")
    assert first.duplicate is False
    before = ticket.state
    # Same id, whatever the type and a later time in which deadlines would have passed.
    decision = ticket.send(type_, T0 + 5 * H, data, event_id="dup")
    assert decision.duplicate is True
    assert decision.outputs == ()
    assert decision.state == before


def test_repeated_event_bytes_are_ignored_and_change_nothing_later() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 5 * MIN, event_id="r1")
    ticket.send("ticket.responded", T0 + 5 * MIN, event_id="r1")
    ticket.send("ticket.updated", T0 + 1 * H, event_id="u1")
    ticket.send("ticket.updated", T0 + 1 * H, event_id="u1")
    ticket.advance(T0 + 3 * H)
    assert update_keys(ticket.outputs) == [(1, T0 + 3 * H)]


def test_repeated_opened_id_is_ignored() -> None:
    data = {"customer_id": "C", "support_tier": "basic", "severity": "high"}
    ticket = Subject()
    ticket.send("ticket.opened", T0, data, event_id="o")
    decision = ticket.send("ticket.opened", T0 + 1 * MIN, data, event_id="o")
    assert decision.duplicate is True
    assert decision.outputs == ()


@pytest.mark.parametrize(("type_", "data"), LATER_EVENTS[1:], ids=[t for t, _ in LATER_EVENTS[1:]])
def test_event_older_than_the_last_event_is_rejected(
    type_: str, data: dict[str, Any] | None
) -> None:
    ticket = Subject()
    ticket.open(T0, "high")
    ticket.send("ticket.resolved", T0 + 1 * H)
    with pytest.raises(Rejected) as info:
        ticket.send(type_, T0 + 1 * H - SEC, data, event_id="late")
    assert info.value.reason == "out_of_order"


def test_rejected_event_leaves_the_ticket_usable() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.updated", T0 + 10 * MIN)
    with pytest.raises(Rejected):
        ticket.send("ticket.responded", T0 + 1 * MIN, event_id="stale")
    ticket.send("ticket.responded", T0 + 14 * MIN, event_id="fresh")
    ticket.advance(T0 + 1 * DAY)
    assert breach_times(ticket.outputs) == []


# -- output identity and time ------------------------------------------------------------------


def _busy_script(subject: str = "TCK-1") -> Subject:
    ticket = Subject(subject)
    ticket.open(T0, "high", "select", customer_id="CUST-5")
    ticket.send("ticket.severity_changed", T0 + 3 * H, {"severity": "urgent"})
    ticket.advance(T0 + 5 * H)
    ticket.send("ticket.responded", T0 + 5 * H)
    ticket.advance(T0 + 11 * H)
    ticket.send("ticket.resolved", T0 + 12 * H)
    ticket.send("ticket.reopened", T0 + 13 * H)
    ticket.advance(T0 + 20 * H)
    return ticket


def test_output_ids_are_deterministic() -> None:
    first, second = _busy_script(), _busy_script()
    assert [o.id for o in first.outputs] == [o.id for o in second.outputs]
    assert [(o.type, o.time, output_data(o)) for o in first.outputs] == [
        (o.type, o.time, output_data(o)) for o in second.outputs
    ]


def test_output_ids_are_distinct_for_distinct_logical_events() -> None:
    outputs = _busy_script().outputs
    kinds = {o.type for o in outputs}
    assert kinds == {"sla.escalation", "sla.breach", "sla.update_due"}
    assert len({o.id for o in outputs}) == len(outputs)


def test_output_ids_differ_between_tickets() -> None:
    one, other = _busy_script("TCK-1"), _busy_script("TCK-2")
    assert {o.id for o in one.outputs}.isdisjoint({o.id for o in other.outputs})


def test_firing_from_a_stale_copy_gives_the_same_ids() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 20 * MIN)
    stale = ticket.state
    assert stale is not None
    once = engine.advance(stale, T0 + 7 * H, DEFAULT_POLICY)
    again = engine.advance(stale, T0 + 7 * H, DEFAULT_POLICY)
    stepwise = engine.advance(stale, T0 + 3 * H, DEFAULT_POLICY)
    assert stepwise.state is not None
    rest = engine.advance(stepwise.state, T0 + 7 * H, DEFAULT_POLICY)
    assert [o.id for o in once.outputs] == [o.id for o in again.outputs]
    assert [o.id for o in once.outputs] == [o.id for o in (*stepwise.outputs, *rest.outputs)]


@pytest.mark.parametrize("late_by", [timedelta(0), SEC, 3 * H, 2 * DAY])
def test_output_time_is_the_deadline_not_the_moment_it_fires(late_by: timedelta) -> None:
    responded = T0 + 20 * MIN
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", responded)
    ticket.send("ticket.updated", responded + 30 * MIN)
    ticket.advance(responded + 30 * MIN + 2 * H + late_by)
    (breach,) = of_type(ticket.outputs, "sla.breach")
    assert breach.time == parse_time(output_data(breach)["due_at"]) == T0 + 15 * MIN
    update = of_type(ticket.outputs, "sla.update_due")[0]
    assert update.time == parse_time(output_data(update)["due_at"]) == responded + 30 * MIN + 2 * H
    step_two = [o for o in of_type(ticket.outputs, "sla.escalation") if output_data(o)["step"] == 2]
    assert [o.time for o in step_two] == [T0 + 2 * H]


def test_outputs_come_in_time_order() -> None:
    ticket = Subject()
    ticket.open(T0, "urgent")
    ticket.send("ticket.responded", T0 + 1 * H)  # breach at 15 min fires first
    decision = ticket.advance(T0 + 9 * H)
    times = [o.time for o in decision.outputs]
    assert times == sorted(times)
    assert len(times) >= 5


def test_cloudevent_envelope_of_an_output() -> None:
    emitted = T0 + 1 * H + 3 * SEC
    ticket = Subject()
    ticket.open(T0, "urgent", "basic", customer_id="CUST-3")
    ticket.advance(T0 + 1 * H)
    (breach,) = of_type(ticket.outputs, "sla.breach")
    event = cloudevent(breach, emitted)
    assert event["specversion"] == "1.0"
    assert event["id"] == breach.id
    assert event["source"] == "sla-processor"
    assert event["type"] == "sla.breach"
    assert event["subject"] == "TCK-1"
    assert parse_time(event["time"]) == T0 + 15 * MIN
    data = event["data"]
    assert parse_time(data["emitted_at"]) == emitted
    assert parse_time(data["due_at"]) == T0 + 15 * MIN
    assert {k: data[k] for k in ("ticket_id", "severity", "support_tier", "target")} == {
        "ticket_id": "TCK-1",
        "severity": "urgent",
        "support_tier": "basic",
        "target": "initial_response",
    }
    assert cloudevent(breach, emitted) == event
    assert cloudevent(breach, emitted + H)["id"] == event["id"]


# -- invariants --------------------------------------------------------------------------------

_ACTIONS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=8 * 60),  # minutes after the previous action
        st.sampled_from(
            [
                ("ticket.severity_changed", {"severity": "urgent"}),
                ("ticket.severity_changed", {"severity": "high"}),
                ("ticket.severity_changed", {"severity": "normal"}),
                ("ticket.severity_changed", {"severity": "low"}),
                ("ticket.responded", None),
                ("ticket.updated", None),
                ("ticket.status_changed", {"status": "pending_customer"}),
                ("ticket.status_changed", {"status": "in_progress"}),
                ("ticket.resolved", None),
                ("ticket.reopened", None),
                ("advance", None),
            ]
        ),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(severity=st.sampled_from(["urgent", "high", "normal", "low"]), actions=_ACTIONS)
def test_invariants_over_random_histories(
    severity: str, actions: list[tuple[int, tuple[str, dict[str, Any] | None]]]
) -> None:
    ticket = Subject()
    ticket.open(T0, severity)
    at: datetime = T0
    resolved = False
    cycle = 1
    for minutes, (type_, data) in actions:
        at += minutes * MIN
        count = len(ticket.outputs)
        if type_ == "advance":
            ticket.advance(at)
        else:
            try:
                ticket.send(type_, at, data)
            except Rejected:
                continue
        new = ticket.outputs[count:]
        if resolved and type_ != "ticket.reopened":
            assert new == [], "nothing is emitted while the ticket is resolved"
        if type_ == "ticket.resolved":
            resolved = True
        elif type_ == "ticket.reopened" and resolved:
            resolved, cycle = False, cycle + 1
        assert all(o.time <= at for o in new)
    ticket.advance(at + 30 * DAY)
    ids = [o.id for o in ticket.outputs]
    assert len(set(ids)) == len(ids), "no logical output twice"
    assert len(breach_times(ticket.outputs)) <= 1
