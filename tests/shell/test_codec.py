"""Table values: every ticket and maintenance state the engine produces survives the codec exactly."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from processor import codec
from processor.sla import engine
from processor.sla.maintenance import Maintenance
from processor.sla.policy import load_policy
from processor.sla.ticket import Ticket
from schemas.cloudevents import parse_event

POLICY = load_policy()  # the seed's: business hours are not involved, values are
T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def ev(event_id: str, type_: str, minutes: float, subject: str, data: Any = None) -> bytes:
    body: dict[str, Any] = {
        "specversion": "1.0", "id": event_id, "source": "tests", "type": type_,
        "time": (T0 + timedelta(minutes=minutes)).isoformat(), "subject": subject,
    }  # fmt: skip
    if data is not None:
        body["data"] = data
    return orjson.dumps(body)


HISTORIES = {
    "T-1": [
        ev("1", "ticket.opened", 0, "T-1", {"customer_id": "c1", "support_tier": "premium", "severity": "urgent"}),
        ev("2", "ticket.responded", 30, "T-1", {"agent_id": "a"}),
        ev("3", "ticket.status_changed", 60, "T-1", {"status": "pending_customer"}),
        ev("4", "ticket.status_changed", 200, "T-1", {"status": "in_progress"}),
        ev("5", "ticket.severity_changed", 300, "T-1", {"severity": "high"}),
        ev("6", "ticket.resolved", 400, "T-1"),
        ev("7", "ticket.reopened", 500, "T-1"),
        ev("8", "ticket.updated", 530, "T-1"),
        ev("9", "ticket.closed", 900, "T-1"),
    ],
    "T-2": [
        ev("1", "ticket.opened", 0, "T-2", {"customer_id": "c2", "support_tier": "basic", "impact": "partial", "workaround_available": False}),
        ev("2", "ticket.severity_changed", 20, "T-2", {"severity": "urgent"}),
    ],
    "M-1": [
        ev("1", "maintenance.scheduled", 0, "M-1", {"kind": "planned", "summary": "db", "window_start": (T0 + timedelta(days=2)).isoformat(), "window_end": (T0 + timedelta(days=2, hours=1)).isoformat(), "services": ["api"], "customers": ["c1", "c2"]}),
        ev("2", "maintenance.rescheduled", 60, "M-1", {"window_start": (T0 + timedelta(days=3)).isoformat(), "window_end": (T0 + timedelta(days=3, hours=2)).isoformat()}),
        ev("3", "maintenance.cancelled", 3 * 1440, "M-1"),
    ],
}  # fmt: skip


def states() -> Iterator[engine.State]:
    """Every state of the histories: after each event, and at every hour in between."""
    for events in HISTORIES.values():
        state: engine.State | None = None
        for raw in events:
            event = parse_event(raw)
            if state is not None:
                moment = state.last_time
                while moment + timedelta(hours=1) < event.time:
                    moment += timedelta(hours=1)
                    advanced = engine.advance(state, moment, POLICY).state
                    if advanced is not None:
                        yield advanced
            decision = engine.decide(state, event, POLICY)
            assert decision.state is not None
            state = decision.state
            yield state


ALL = list(states())


@pytest.mark.parametrize("state", ALL, ids=lambda s: f"{type(s).__name__}")
def test_round_trip_is_exact(state: engine.State) -> None:
    raw = codec.encode_state(state)
    assert codec.decode_state(raw) == state
    assert codec.encode_state(codec.decode_state(raw)) == raw  # deterministic bytes


def test_the_states_cover_every_field() -> None:
    """Each field of both state types takes a non-default value somewhere in ALL."""
    for cls in (Ticket, Maintenance):
        found = [s for s in ALL if isinstance(s, cls)]
        for field in dataclasses.fields(cls):
            default = field.default if field.default is not dataclasses.MISSING else object()
            values = {repr(getattr(s, field.name)) for s in found}
            assert values - {repr(default)}, f"{cls.__name__}.{field.name} never set"


def test_instants_keep_microseconds_and_stay_utc() -> None:
    ticket = next(s for s in ALL if isinstance(s, Ticket))
    back = codec.decode_state(codec.encode_state(ticket))
    assert isinstance(back, Ticket)
    assert back.opened_at == T0
    assert back.opened_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"{}", b'["t"]', b'["x", 1]', b'["t", 99]',
     codec.encode_state(ALL[0])[:-1] + b', 1]', b'["m", 1, "M", "planned"]', b"null"],
)  # fmt: skip
def test_undecodable_values_raise_corrupt_state(raw: bytes) -> None:
    with pytest.raises(codec.CorruptState):
        codec.decode_state(raw)


def test_encoded_states_are_right_sized() -> None:
    """Table values live long: an encoding must not keep a serializer's spare buffer."""
    opened = ev(
        "e1",
        "ticket.opened",
        0,
        "T-1",
        {"customer_id": "c", "support_tier": "premium", "severity": "urgent"},
    )
    state = engine.decide(None, parse_event(opened), load_policy()).state
    assert state is not None
    tracemalloc.start()
    kept = [codec.encode_state(state) for _ in range(1000)]
    retained = tracemalloc.get_traced_memory()[0] / len(kept)
    tracemalloc.stop()
    assert retained < 2 * len(kept[0]) + 64
