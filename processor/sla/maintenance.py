"""Change management: notices, the five-day lead-time rule and reminders for maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from processor.sla.exceptions import Rejected
from processor.sla.ids import digest, remember
from processor.sla.outputs import MaintenanceNotice, NoticeType, Output
from processor.sla.policy import Policy
from processor.sla.values import evolve
from schemas.cloudevents import (
    MaintenanceCancelled,
    MaintenanceEvent,
    MaintenanceRescheduled,
    MaintenanceScheduled,
)


@dataclass(frozen=True)  # no slots: `evolve` copies the instance dict
class Maintenance:
    """One maintenance's current window; `armed_at` is when that window was (re)announced."""

    maintenance_id: str
    kind: str
    summary: str
    services: tuple[str, ...]
    customers: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    revision: int
    armed_at: datetime
    last_time: datetime
    reminders_done: frozenset[timedelta] = frozenset()
    cancelled_at: datetime | None = None
    seen_ids: tuple[int, ...] = ()
    policy: str = ""  # the governing policy version, chosen at the first announcement (codec 5)


@dataclass(frozen=True, slots=True)
class MaintenanceDecision:
    state: Maintenance | None
    outputs: tuple[Output, ...]
    next_deadline: datetime | None
    duplicate: bool = False


def next_reminder(state: Maintenance, policy: Policy) -> tuple[timedelta, datetime] | None:
    """The next reminder; one whose instant had passed when the window was announced is skipped."""
    if state.cancelled_at is not None:
        return None
    for offset in policy.maintenance.reminder_offsets:  # largest offset (earliest reminder) first
        due = state.window_start - offset
        if offset not in state.reminders_done and due > state.armed_at:
            return offset, due
    return None


def expires_at(state: Maintenance, policy: Policy) -> datetime:
    ended = state.cancelled_at if state.cancelled_at is not None else state.window_end
    return ended + policy.ended_maintenance_retention


def next_deadline(state: Maintenance, policy: Policy) -> datetime:
    reminder = next_reminder(state, policy)
    return reminder[1] if reminder else expires_at(state, policy)


def advance(state: Maintenance, now: datetime, policy: Policy) -> MaintenanceDecision:
    outputs: list[Output] = []
    while (reminder := next_reminder(state, policy)) is not None and reminder[1] <= now:
        offset, due = reminder
        outputs.append(_notice(state, NoticeType.REMINDER, due, offset=offset))
        state = evolve(state, reminders_done=state.reminders_done | {offset})
    if expires_at(state, policy) <= now:
        return MaintenanceDecision(None, tuple(outputs), None)
    return MaintenanceDecision(state, tuple(outputs), next_deadline(state, policy))


def decide(
    state: Maintenance | None, event: MaintenanceEvent, policy: Policy
) -> MaintenanceDecision:
    """Apply one event after firing the reminders due strictly before it."""
    event_digest = digest(event.id)
    if state is not None and event_digest in state.seen_ids:
        return MaintenanceDecision(state, (), next_deadline(state, policy), duplicate=True)
    earlier: tuple[Output, ...] = ()
    if state is not None:
        _check_acceptable(state, event)
        fired = advance(state, event.time - timedelta(microseconds=1), policy)
        state, earlier = fired.state or state, fired.outputs
    state, outputs = _apply(state, event, policy)
    state = evolve(state, last_time=event.time, seen_ids=remember(state.seen_ids, event_digest))
    return MaintenanceDecision(state, (*earlier, *outputs), next_deadline(state, policy))


def _check_acceptable(state: Maintenance, event: MaintenanceEvent) -> None:
    if state.cancelled_at is not None:
        raise Rejected("maintenance_cancelled", f"maintenance {state.maintenance_id} is cancelled")
    if event.time < state.last_time:
        raise Rejected("out_of_order", "event time is before the maintenance's last event")
    if isinstance(event, MaintenanceScheduled):
        raise Rejected(
            "already_scheduled", f"maintenance {state.maintenance_id} is already scheduled"
        )


def _apply(
    state: Maintenance | None, event: MaintenanceEvent, policy: Policy
) -> tuple[Maintenance, list[Output]]:
    at = event.time
    match event:
        case MaintenanceScheduled(data=data):
            state = Maintenance(
                event.subject, data.kind, data.summary, data.services, data.customers,
                data.window_start, data.window_end, revision=1, armed_at=at, last_time=at,
            )  # fmt: skip
            return state, _announce(state, at, policy)
        case MaintenanceRescheduled(data=data) if state is not None:
            state = evolve(
                state, window_start=data.window_start, window_end=data.window_end,
                revision=state.revision + 1, armed_at=at, reminders_done=frozenset(),
            )  # fmt: skip
            return state, _announce(state, at, policy)
        case MaintenanceCancelled() if state is not None:
            state = evolve(state, cancelled_at=at)
            return state, [_notice(state, NoticeType.CANCELLED, at)]
    raise Rejected("unknown_maintenance", f"no scheduled maintenance {event.subject}")


def _announce(state: Maintenance, at: datetime, policy: Policy) -> list[Output]:
    """The notice, and a lead-time violation when planned work is announced too late."""
    rules = policy.maintenance
    outputs: list[Output] = [_notice(state, NoticeType.NOTICE, at)]
    if state.kind not in rules.exempt_kinds and state.window_start - at < rules.minimum_notice:
        outputs.append(
            _notice(state, NoticeType.LEAD_TIME_VIOLATION, at, minimum_notice=rules.minimum_notice)
        )
    return outputs


def _notice(
    state: Maintenance,
    notice: NoticeType,
    at: datetime,
    *,
    offset: timedelta | None = None,
    minimum_notice: timedelta | None = None,
) -> MaintenanceNotice:
    return MaintenanceNotice(
        notice, state.maintenance_id, state.kind, state.revision, state.window_start,
        state.window_end, state.window_start - at, state.summary, state.services, state.customers,
        at, minimum_notice, offset,
    )  # fmt: skip
