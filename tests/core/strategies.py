"""Event builders and hypothesis strategies for the pure core's tests: ticket scripts and garbage."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

from hypothesis import strategies as st

from processor.sla.policy import Policy, parse_policy
from schemas.cloudevents import EARLIEST, LATEST, InputEvent, parse_event

from .factories import DEFAULT_POLICY, T0, envelope, rfc3339, to_bytes

SEVERITIES = ("urgent", "high", "normal", "low")
TIERS = ("premium", "select", "basic")
IMPACTS = ("service_down", "partial", "minor", "none")
PROBLEM_TYPES = ("platform", "API", "vpn-apn", "database", "billing", "question", "how to")
# The pausing status twice: half of the status changes pause the update clock.
STATUSES = ("pending_customer", "in_progress", "waiting_on_vendor", "pending_customer")


# -- policies -----------------------------------------------------------------------------------


def default_document() -> dict[str, Any]:
    raw = resources.files("processor.sla").joinpath("default_policy.toml").read_text()
    return tomllib.loads(raw)


def office_hours_policy() -> Policy:
    """The default policy with high, normal and low tickets on a London office-hours clock."""
    document = default_document()
    weekly = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    document["calendars"] = {
        "office": {"timezone": "Europe/London", "weekly": weekly, "holidays": ["2026-03-04"]}
    }
    document["clocks"] = {"normal": "office", "low": "office", "high": "office"}
    return parse_policy(document, "office-hours")


POLICIES = {"default": DEFAULT_POLICY, "office hours": office_hours_policy()}
# Names, not the policies: hypothesis prints a failing example's name, not a page of tables.
policy_names = st.sampled_from(sorted(POLICIES))


# -- ticket scripts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Advance:
    """A timer firing in the shell: advance the ticket's clock to `now`."""

    now: datetime


Step = InputEvent | Advance

_EXACT = [timedelta(minutes=m) for m in (15, 60, 90, 120, 240, 360, 480, 1440)]
# Zero, exact policy durations (events land on deadlines), a hair, minutes to hours, long waits.
gaps = st.one_of(
    st.just(timedelta(0)),
    st.sampled_from(_EXACT),
    st.integers(1, 1_000_000).map(lambda us: timedelta(microseconds=us)),
    st.integers(1, 3 * 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(3 * 3600, 26 * 3600).map(lambda s: timedelta(seconds=s)),
)

_with_severity = st.fixed_dictionaries(
    {
        "customer_id": st.just("C-1"),
        "support_tier": st.sampled_from(TIERS),
        "severity": st.sampled_from(SEVERITIES[:2] + SEVERITIES),
    }
)
# Classified from impact and problem type; now and then from too little (a rejected open).
_classified = st.fixed_dictionaries(
    {
        "customer_id": st.just("C-1"),
        "support_tier": st.sampled_from(TIERS),
        "impact": st.sampled_from((*IMPACTS, None)),
    },
    optional={
        "problem_type": st.sampled_from(PROBLEM_TYPES),
        "workaround_available": st.booleans(),
    },
).map(lambda data: {k: v for k, v in data.items() if v is not None})
opened_data = st.one_of(_with_severity, _with_severity, _classified)

_WEIGHTS = {
    "advance": 6,
    "ticket.severity_changed": 2,
    "ticket.responded": 4,
    "ticket.updated": 3,
    "ticket.status_changed": 3,
    "ticket.resolved": 2,
    "ticket.reopened": 2,
    "ticket.closed": 1,
    "duplicate": 4,
    "out_of_order": 2,
    "ticket.opened": 1,
    "ticket.escalation_acknowledged": 2,
}
_KINDS = tuple(kind for kind, weight in _WEIGHTS.items() for _ in range(weight))
_LATE_KINDS = tuple(kind for kind in _WEIGHTS if kind.startswith("ticket."))


def _data_for(draw: st.DrawFn, kind: str) -> dict[str, Any] | None:
    if kind == "ticket.opened":
        opened: dict[str, Any] = draw(opened_data)
        return opened
    if kind == "ticket.severity_changed":
        return {"severity": draw(st.sampled_from(SEVERITIES))}
    if kind == "ticket.status_changed":
        return {"status": draw(st.sampled_from(STATUSES))}
    if kind in ("ticket.responded", "ticket.updated"):
        return {"agent_id": "A-1"}
    if kind == "ticket.escalation_acknowledged":
        return {"step": draw(st.integers(1, 3))}
    return None


@st.composite
def ticket_scripts(
    draw: st.DrawFn, subject: str = "T-1", max_steps: int = 30, late: bool = True
) -> list[Step]:
    """`ticket.opened`, then random events, duplicates and timer firings in non-decreasing time.

    `late` adds the odd event stamped before the one preceding it (an out-of-order event).
    """
    cursor = T0 + timedelta(seconds=draw(st.integers(0, 7 * 86400)))
    raw: list[dict[str, Any]] = [
        envelope("ticket.opened", subject, cursor, draw(opened_data), event_id=f"{subject}/0")
    ]
    steps: list[Step] = [parse_event(to_bytes(raw[0]))]
    # Swarm testing: each script draws from a random subset of the kinds, so that rare mixes
    # (a severity change and no response at all, say) come up as often as common ones.
    swarm = draw(st.lists(st.booleans(), min_size=len(_WEIGHTS), max_size=len(_WEIGHTS)))
    enabled = {kind for kind, on in zip(_WEIGHTS, swarm, strict=True) if on} or {"advance"}
    pool = [kind for kind in _KINDS if kind in enabled]
    length, n = draw(st.integers(0, max_steps)), 0
    if draw(st.booleans()):  # an early answer, so that update windows come into play
        n, length = 1, length + 1
        cursor += draw(gaps)
        raw.append(envelope("ticket.responded", subject, cursor, {}, event_id=f"{subject}/1"))
        steps.append(parse_event(to_bytes(raw[-1])))
    while n < length:
        n += 1
        kind = draw(st.sampled_from(pool))
        if kind == "out_of_order" and not late:
            kind = "advance"
        if kind == "duplicate":
            event = draw(st.sampled_from(raw))
            if draw(st.booleans()):  # the same id, but not the same event: still a repeat
                event = {**event, "time": rfc3339(cursor + draw(gaps))}
        elif kind == "out_of_order":
            back = draw(gaps) + timedelta(microseconds=1)
            kind = draw(st.sampled_from(_LATE_KINDS))
            event = envelope(
                kind, subject, cursor - back, _data_for(draw, kind), event_id=f"{subject}/{n}"
            )
        else:
            cursor += draw(gaps)
            if kind == "advance":
                steps.append(Advance(cursor))
                continue
            if kind == "ticket.closed":  # little happens after a close but rejections
                length = min(length, n + draw(st.integers(0, 3)))
            event = envelope(
                kind, subject, cursor, _data_for(draw, kind), event_id=f"{subject}/{n}"
            )
        raw.append(event)
        steps.append(parse_event(to_bytes(event)))
    return steps


_RETARGET_KINDS = ("ticket.severity_changed",) * 3 + ("advance",) * 2 + ("ticket.responded",)


@st.composite
def retargeting_scripts(draw: st.DrawFn, subject: str = "T-1") -> list[Step]:
    """Severity changes while the initial response is still due, then time passing.

    In a general mix the response or the breach usually comes first; these scripts spread a few
    severity changes, the odd response and timers over the first hours instead.
    """
    opened_at = T0 + timedelta(seconds=draw(st.integers(0, 7 * 86400)))
    opened = envelope(
        "ticket.opened", subject, opened_at, draw(_with_severity), event_id=f"{subject}/0"
    )
    offsets = draw(st.lists(st.integers(0, 10 * 3600), min_size=1, max_size=8))
    steps: list[Step] = [parse_event(to_bytes(opened))]
    for n, offset in enumerate(sorted(offsets), start=1):
        at = opened_at + timedelta(seconds=offset)
        kind = draw(st.sampled_from(_RETARGET_KINDS))
        if kind == "advance":
            steps.append(Advance(at))
        else:
            event = envelope(kind, subject, at, _data_for(draw, kind), event_id=f"{subject}/{n}")
            steps.append(parse_event(to_bytes(event)))
    return steps


_UPDATE_KINDS = (
    ("ticket.status_changed",) * 4
    + ("advance",) * 3
    + ("ticket.updated", "ticket.severity_changed", "ticket.resolved", "ticket.reopened")
)


@st.composite
def update_scripts(draw: st.DrawFn, subject: str = "T-1") -> list[Step]:
    """An answered urgent or high ticket, then pauses, updates and severity changes over hours.

    The update clock needs a response, a severity with an update frequency and long enough
    without an update; pauses within a window are rarer still in a general mix.
    """
    opened_at = T0 + timedelta(seconds=draw(st.integers(0, 7 * 86400)))
    data = {"customer_id": "C-1", "support_tier": draw(st.sampled_from(TIERS))}
    data["severity"] = draw(st.sampled_from(SEVERITIES[:2]))
    answered = opened_at + timedelta(seconds=draw(st.integers(0, 3600)))
    steps: list[Step] = [
        parse_event(
            to_bytes(envelope("ticket.opened", subject, opened_at, data, event_id=f"{subject}/0"))
        ),
        parse_event(
            to_bytes(envelope("ticket.responded", subject, answered, {}, event_id=f"{subject}/1"))
        ),
    ]
    offsets = draw(st.lists(st.integers(0, 30 * 3600), min_size=1, max_size=12))
    for n, offset in enumerate(sorted(offsets), start=2):
        at = answered + timedelta(seconds=offset)
        kind = draw(st.sampled_from(_UPDATE_KINDS))
        if kind == "advance":
            steps.append(Advance(at))
            continue
        event = envelope(kind, subject, at, _data_for(draw, kind), event_id=f"{subject}/{n}")
        steps.append(parse_event(to_bytes(event)))
    return steps


# -- garbage ------------------------------------------------------------------------------------

_KEYS = ("specversion", "id", "source", "type", "time", "subject", "data")
_DATA_KEYS = (
    "customer_id",
    "support_tier",
    "severity",
    "impact",
    "problem_type",
    "workaround_available",
    "agent_id",
    "status",
    "kind",
    "window_start",
    "window_end",
    "summary",
    "services",
    "customers",
)
TYPES = (
    "ticket.opened",
    "ticket.severity_changed",
    "ticket.responded",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.resolved",
    "ticket.closed",
    "ticket.reopened",
    "maintenance.scheduled",
    "maintenance.rescheduled",
    "maintenance.cancelled",
)

offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# The ends of datetime's range, and of the range the parser accepts (instants just outside it
# must be refused, instants just inside must be safe to add deadlines and retention to).
_EDGES = (datetime.min.replace(tzinfo=UTC), EARLIEST, LATEST, datetime.max.replace(tzinfo=UTC))
_EDGE_OFFSETS = st.one_of(
    st.just(0), st.integers(-3600, 3600), st.integers(-30 * 86400, 30 * 86400)
)


def _near(edge: datetime, seconds: int) -> datetime:
    """`edge` moved by `seconds`, or `edge` itself where that would leave datetime's range."""
    try:
        return edge + timedelta(seconds=seconds)
    except OverflowError:
        return edge


edge_instants = st.builds(_near, st.sampled_from(_EDGES), _EDGE_OFFSETS)
near_instants = st.integers(-86400, 30 * 86400).map(lambda s: T0 + timedelta(seconds=s))
utc_instants = st.one_of(
    near_instants,
    st.datetimes(timezones=st.just(UTC)),
    edge_instants,
)
# Any instant in any offset, the ends of datetime's range included.
any_instants = st.one_of(
    st.datetimes(timezones=offsets),
    st.tuples(edge_instants, offsets).map(lambda pair: pair[0].replace(tzinfo=pair[1])),
).map(lambda moment: moment.isoformat())
time_texts = st.one_of(
    any_instants,
    utc_instants.map(rfc3339),
    st.sampled_from(["2026-03-02T09:00:00", "2026-02-30T09:00:00Z", "yesterday", ""]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from([*SEVERITIES, *TIERS, *IMPACTS, *TYPES, "1.0"]),
    time_texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _valid_data(
    draw: st.DrawFn, type_: str, instants: st.SearchStrategy[datetime]
) -> dict[str, Any] | None:
    if type_.startswith("ticket."):
        return _data_for(draw, type_)
    if type_ == "maintenance.cancelled":
        return None
    start = draw(instants)
    end = start + min(timedelta(seconds=draw(st.integers(1, 86400))), _EDGES[1] - start)
    window = {"window_start": rfc3339(start), "window_end": rfc3339(end)}
    if type_ == "maintenance.scheduled":
        window |= {"kind": draw(st.sampled_from(["planned", "emergency"])), "summary": "work"}
    return window


@st.composite
def valid_events(
    draw: st.DrawFn,
    subjects: tuple[str, ...] = ("X-1", "X-2"),
    instants: st.SearchStrategy[datetime] = utc_instants,
) -> dict[str, Any]:
    """A well-formed event of any type at any instant datetime can hold (UTC)."""
    type_ = draw(st.sampled_from(TYPES))
    return envelope(
        type_,
        draw(st.sampled_from(subjects)),
        rfc3339(draw(instants)),
        _valid_data(draw, type_, instants),
        event_id=f"e{draw(st.integers(0, 9))}",
    )


@st.composite
def mangled_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with random keys dropped or replaced, at the top level or inside `data`."""
    event = draw(valid_events())
    for _ in range(draw(st.integers(0, 4))):
        target = event
        if isinstance(event.get("data"), dict) and draw(st.booleans()):
            target = event["data"]
        key = draw(st.sampled_from(_KEYS if target is event else _DATA_KEYS) | st.text(max_size=5))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    if draw(st.booleans()):
        event["time"] = draw(time_texts)
    return event


garbage = st.one_of(
    st.binary(max_size=300),
    mangled_events().map(lambda event: json.dumps(event).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    valid_events()
    .map(to_bytes)
    .flatmap(lambda raw: st.integers(0, len(raw)).map(lambda cut: raw[:cut])),
)
