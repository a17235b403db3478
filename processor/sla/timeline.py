"""A ticket's timeline: what happened to it and why, as a support manager shows it in a dispute.

The shells record entries as they apply events and emit outputs (`event_entry`, `rejected_entry`,
`output_entries`); `timeline` turns a ticket's entries, its current state and the policy into the
answer: every applied event, the clock's segments (running, paused, out of hours, stopped), every
deadline still pending with its rule, every output with its id, due time and lateness, and every
rejected event with its reason. Entries are JSON-ready dicts, so a shell can store them as they are.

Everything but `emitted_at` and `lateness` (measured by the shell that emitted) is a function of
the ticket's events and the policy: the worker and replay give the same answer as of the same
instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from processor.sla import ticket as rules
from processor.sla.business_hours import BusinessCalendar
from processor.sla.outputs import Output
from processor.sla.policy import Policy
from processor.sla.ticket import Phase, Ticket
from processor.sla.vocabulary import Severity
from schemas.cloudevents import TicketEvent
from schemas.outputs import data as output_data
from schemas.outputs import iso_duration, rfc3339

Entry = dict[str, Any]
# Split into working and out-of-hours parts at most this many segments (a ticket open for
# years on an office clock would otherwise list every night).
MAX_SEGMENTS: Final = 2000
_PRIVATE: Final = frozenset({"ticket_id", "customer_id", "emitted_at"})


def event_entry(event: TicketEvent, state: Ticket) -> Entry:
    """An applied event, with the clock's state right after it."""
    data = {} if event.data is None else event.data.model_dump(mode="json", exclude_none=True)
    return {
        "kind": "event",
        "id": event.id,
        "type": event.type,
        "time": rfc3339(event.time),
        "data": data,
        "after": {
            "phase": state.phase.value,
            "severity": state.severity.value,
            "paused": state.paused_since is not None,
            "cycle": state.cycle,
        },
    }


def rejected_entry(event: TicketEvent, reason: str) -> Entry:
    """An event the ticket refused (`reason` as on the dead-letter topic), or ignored
    (`duplicate`)."""
    return {
        "kind": "rejected",
        "id": event.id,
        "type": event.type,
        "time": rfc3339(event.time),
        "reason": reason,
    }


def output_entries(outputs: Iterable[Output], emitted_at: datetime) -> list[Entry]:
    """Outputs as emitted at `emitted_at`: their lateness is emission minus due time."""
    found = []
    for output in outputs:
        detail = {k: v for k, v in output_data(output).items() if k not in _PRIVATE}
        found.append({
            "kind": "output",
            "id": output.id,
            "type": output.type,
            "due": rfc3339(output.time),
            "emitted_at": rfc3339(emitted_at),
            "lateness": iso_duration(max(emitted_at - output.time, timedelta(0))),
            "data": detail,
        })  # fmt: skip
    return found


def timeline(
    ticket_id: str,
    entries: Sequence[Entry],
    dropped: int,
    state: Ticket | None,
    policy: Policy,
    as_of: datetime,
) -> dict[str, Any]:
    events = [e for e in entries if e["kind"] == "event"]
    return {
        "ticket_id": ticket_id,
        "as_of": rfc3339(as_of),
        "policy": policy.fingerprint,
        "policy_version": None if state is None else state.policy,
        "phase": None if state is None else state.phase.value,
        "severity": None if state is None else state.severity.value,
        "support_tier": None if state is None else state.tier.value,
        "events": [{k: v for k, v in e.items() if k != "kind"} for e in events],
        "segments": _merged(segments(events, policy, as_of)),
        "deadlines": [] if state is None else pending(state, policy),
        "outputs": [{k: v for k, v in e.items() if k != "kind"} for e in entries
                    if e["kind"] == "output"],
        "rejected": [{k: v for k, v in e.items() if k != "kind"} for e in entries
                     if e["kind"] == "rejected"],
        "entries_dropped": dropped,
    }  # fmt: skip


def segments(events: Sequence[Entry], policy: Policy, as_of: datetime) -> list[dict[str, Any]]:
    """The clock between events: running, paused (a pausing status: the update clock waits;
    the initial-response and escalation clocks run on), stopped (resolved or closed), and the
    running time outside the calendar's working hours as out_of_hours. The last segment of an
    open ticket ends at `as_of`."""
    found: list[dict[str, Any]] = []
    following_events: list[Entry | None] = [*events[1:], None] if events else []
    for this, following in zip(events, following_events, strict=True):
        start = _instant(this["time"])
        end = as_of if following is None else _instant(following["time"])
        after = this["after"]
        if following is None and after["phase"] == Phase.CLOSED.value:
            found.append(_segment("stopped", start, None, after))
            break
        if end <= start and following is not None:
            continue
        if after["phase"] != Phase.OPEN.value:
            found.append(_segment("stopped", start, end, after))
            continue
        state = "paused" if after["paused"] else "running"
        clock = policy.clock(Severity(after["severity"]))
        for name, lo, hi in _working(state, start, max(end, start), clock):
            if len(found) >= MAX_SEGMENTS:
                return found
            found.append(_segment(name, lo, hi, after))
    return found


def _merged(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent segments alike (an event that changed nothing of the clock) as one."""
    merged: list[dict[str, Any]] = []
    for segment in found:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last["end"] == segment["start"]
            and all(last[k] == segment[k] for k in ("state", "severity", "cycle"))
        ):
            last["end"] = segment["end"]
        else:
            merged.append(dict(segment))
    return merged


def _working(
    state: str, start: datetime, end: datetime, clock: object
) -> Iterator[tuple[str, datetime, datetime]]:
    if not isinstance(clock, BusinessCalendar) or end <= start:
        yield state, start, end
        return
    cursor = start
    for lo, hi in clock.spans(start, end):
        if lo > cursor:
            yield "out_of_hours", cursor, lo
        yield state, lo, hi
        cursor = hi
    if cursor < end:
        yield "out_of_hours", cursor, end


def _segment(
    state: str, start: datetime, end: datetime | None, after: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "state": state,
        "start": rfc3339(start),
        "end": None if end is None else rfc3339(end),
        "severity": after["severity"],
        "cycle": after["cycle"],
    }


def pending(state: Ticket, policy: Policy) -> list[dict[str, Any]]:
    """Every deadline the ticket still has, earliest first, with the rule that set it."""
    found: list[tuple[datetime, dict[str, Any]]] = []
    severity, tier = state.severity.value, state.tier.value
    if state.response_due is not None:
        target = policy.response_targets[(state.severity, state.tier)]
        found.append((state.response_due, {
            "rule": "initial_response",
            "detail": f"initial response within {iso_duration(target)} ({severity}, {tier})",
        }))  # fmt: skip
    if state.phase is Phase.OPEN:
        clock = policy.clock(state.severity)
        for step in policy.ladders.get(state.severity, ()):
            if (state.severity, step.number) not in state.steps_done:
                found.append((clock.add(state.cycle_start, step.after), {
                    "rule": "escalation", "step": step.number,
                    "detail": f"step {step.number} of the {severity} ladder, "
                              f"{iso_duration(step.after)} after the clock start",
                }))  # fmt: skip
    update = rules.update_due(state, policy)
    if update is not None:
        frequency = policy.update_frequency[state.severity]
        found.append((update, {
            "rule": "update_due",
            "detail": f"a customer-visible update every {iso_duration(frequency)} ({severity})",
        }))  # fmt: skip
    for waiting_severity, number, escalated_at, since, missed in state.awaiting:
        rule = policy.acknowledgement.get(waiting_severity)
        if rule is not None:
            found.append((policy.clock(waiting_severity).add(since, rule.within), {
                "rule": "acknowledgement", "step": number,
                "detail": f"step {number} escalated at {rfc3339(escalated_at)} acknowledged "
                          f"within {iso_duration(rule.within)} ({missed} windows missed)",
            }))  # fmt: skip
    if state.survey_due is not None:
        found.append((state.survey_due, {"rule": "survey", "detail": "satisfaction survey"}))
    found.sort(key=lambda item: item[0])
    return [{"due": rfc3339(due), **what} for due, what in found]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)
