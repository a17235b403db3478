"""Table values: every ticket and maintenance state the engine produces survives the codec exactly."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor import codec
from processor.instants import epoch
from processor.sla import engine
from processor.sla.maintenance import Maintenance
from processor.sla.policy import load_policy
from processor.sla.ticket import Phase, Ticket
from processor.sla.vocabulary import Severity
from schemas.cloudevents import parse_event

# The seed's, with every optional rule on (warnings, acknowledgements, corrections, surveys):
# business hours are not involved, values are.
EXTENDED = Path(__file__).parents[2] / "examples" / "policies" / "extended.toml"
POLICY = load_policy(EXTENDED)
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
        ev("1a", "ticket.escalation_acknowledged", 20, "T-1", {"step": 1, "role": "tier2"}),
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
    "T-3": [  # resolved, and surveyed a day later; then closed
        ev("1", "ticket.opened", 0, "T-3", {"customer_id": "c3", "support_tier": "select", "severity": "low"}),
        ev("2", "ticket.responded", 10, "T-3", {"agent_id": "a3"}),
        ev("3", "ticket.resolved", 60, "T-3"),
        ev("4", "ticket.closed", 60 + 26 * 60, "T-3"),
    ],
    "M-1": [
        ev("1", "maintenance.scheduled", 0, "M-1", {"kind": "planned", "summary": "db", "window_start": (T0 + timedelta(days=2)).isoformat(), "window_end": (T0 + timedelta(days=2, hours=1)).isoformat(), "services": ["api"], "customers": ["c1", "c2"]}),
        ev("2", "maintenance.rescheduled", 60, "M-1", {"window_start": (T0 + timedelta(days=3)).isoformat(), "window_end": (T0 + timedelta(days=3, hours=2)).isoformat()}),
        ev("3", "maintenance.cancelled", 3 * 1440, "M-1"),
    ],
}  # fmt: skip


def states() -> Iterator[tuple[str, engine.State]]:
    """Every state of the histories, named: after each event (`T-1.e3`), and at every hour in
    between (`T-1.e3+2h`)."""
    for subject, events in HISTORIES.items():
        state: engine.State | None = None
        after = ""
        for raw in events:
            event = parse_event(raw)
            if state is not None:
                moment, hours = state.last_time, 0
                while moment + timedelta(hours=1) < event.time:
                    moment, hours = moment + timedelta(hours=1), hours + 1
                    advanced = engine.advance(state, moment, POLICY).state
                    if advanced is not None:
                        yield f"{after}+{hours}h", advanced
            decision = engine.decide(state, event, POLICY)
            assert decision.state is not None
            state, after = decision.state, f"{subject}.e{event.id}"
            yield after, state


def _distinct() -> dict[str, engine.State]:
    """The states of `states()` once each (an hour that changes nothing repeats a state), by
    the name of their first appearance."""
    named: dict[str, engine.State] = {}
    for name, state in states():
        if state not in named.values():
            named[name] = state
    return named


NAMED = _distinct()
ALL = list(NAMED.values())
CASES = [pytest.param(state, id=name) for name, state in NAMED.items()]


def encode(state: engine.State) -> bytes:
    """What the worker stores: the state with its next deadline under POLICY."""
    return codec.encode_state(state, engine.next_deadline(state, POLICY), POLICY.fingerprint)


def version_1(state: engine.State) -> bytes:
    """The value an earlier release stored: `[kind, 1, field...]`, without the fields of 4."""
    kind, _, _, _, *fields = orjson.loads(encode(state))
    return orjson.dumps([kind, 1, *fields[: codec._LAYOUTS[kind].older]])


def version_3(state: engine.State) -> bytes:
    """The value release 3 stored: the head, and the fields up to `seen_ids`."""
    kind, _, policy, due, *fields = orjson.loads(encode(state))
    return orjson.dumps([kind, 3, policy, due, *fields[: codec._LAYOUTS[kind].older]])


def as_of_version_3(state: engine.State) -> engine.State:
    """`state` with the fields version 4 added at their defaults (what a version 3 value held)."""
    fields = dataclasses.fields(state)
    newer = fields[codec._LAYOUTS["t" if isinstance(state, Ticket) else "m"].older :]
    return dataclasses.replace(state, **{f.name: f.default for f in newer})


@pytest.mark.parametrize("state", CASES)
def test_version_3_values_decode_with_the_new_fields_at_their_defaults(
    state: engine.State,
) -> None:
    assert codec.decode_state(version_3(state)) == as_of_version_3(state)
    # A field too many or too few for its version is corrupt, not silently mis-assigned.
    kind, version, policy, due, *fields = orjson.loads(version_3(state))
    for wrong in (fields[:-1], [*fields, None]):
        with pytest.raises(codec.CorruptState):
            codec.decode_state(orjson.dumps([kind, version, policy, due, *wrong]))


def test_a_ticket_with_every_new_field_set_round_trips() -> None:
    ticket = next(c.values[0] for c in CASES if isinstance(c.values[0], Ticket))
    assert isinstance(ticket, Ticket)
    base = dataclasses.replace(ticket, warned=frozenset({"initial_response@50%"}))
    full = dataclasses.replace(
        base,
        awaiting=((Severity.URGENT, 1, ticket.opened_at, ticket.opened_at, 2),),
        resolved_at=ticket.opened_at,
        survey_due=ticket.opened_at,
        surveyed_cycle=1,
        last_agent="a7",
        base=base,
        fired=(("id-1", "sla.breach", "breaches", ticket.opened_at),),
    )
    raw = encode(full)
    assert codec.decode_state(raw) == full
    assert encode(codec.decode_state(raw)) == raw


@pytest.mark.parametrize("state", CASES)
def test_round_trip_is_exact(state: engine.State) -> None:
    raw = encode(state)
    assert codec.decode_state(raw) == state
    assert encode(codec.decode_state(raw)) == raw  # deterministic bytes


@pytest.mark.parametrize("state", CASES)
def test_version_1_values_still_decode(state: engine.State) -> None:
    assert codec.decode_state(version_1(state)) == as_of_version_3(state)
    assert codec.peek(version_1(state)) is None  # only decoding can tell their deadline


@pytest.mark.parametrize("state", CASES)
def test_peek_reads_what_decoding_would_compute(state: engine.State) -> None:
    due = engine.next_deadline(state, POLICY)
    label = None
    if isinstance(state, Ticket) and state.phase is Phase.OPEN:
        label = (state.severity.value, state.tier.value)
    head = codec.peek(encode(state))
    assert head is not None
    policy, due_us, open_label = head
    assert policy == POLICY.fingerprint
    assert open_label == label
    if due is None:
        assert due_us is None
    else:  # the index holds epoch seconds: the stored microseconds give the same float
        assert due_us is not None
        assert due_us / 1e6 == epoch(due)


def test_the_histories_reach_every_kind_of_peek() -> None:
    heads = [codec.peek(encode(s)) for s in ALL]
    assert {h[1] is None for h in heads if h} == {True, False}  # with and without a deadline
    assert {h[2] is None for h in heads if h} == {True, False}  # open tickets and the rest


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"{}", b'["t"]', b'["t", 2]', b'["t", 2, 7, null]',
     b'["t", 2, "p", "soon"]', b'["t", 2, "p", 1.5]', b'"t"', b"null"],
)  # fmt: skip
def test_peek_leaves_anything_unusual_to_decoding(raw: bytes) -> None:
    assert codec.peek(raw) is None


def _replaced(raw: bytes, index: int, value: Any) -> bytes:
    values = orjson.loads(raw)
    values[index] = value
    return orjson.dumps(values)


OPEN_TICKET = next(s for s in ALL if isinstance(s, Ticket) and s.phase is Phase.OPEN)


@pytest.mark.parametrize(
    ("index", "value"),
    [(0, "x"), (2, 7), (3, 1.5), (3, "soon"), (3, True), (6, "bogus"), (7, ["low"])],
    ids=["kind", "policy", "due float", "due text", "due bool", "tier", "severity"],
)
def test_peek_leaves_a_full_length_value_with_a_bad_head_or_label_to_decoding(
    index: int, value: Any
) -> None:
    raw = encode(OPEN_TICKET)
    assert codec.peek(raw) is not None
    assert codec.peek(_replaced(raw, index, value)) is None


def test_peek_leaves_a_value_of_the_wrong_length_to_decoding() -> None:
    values = orjson.loads(encode(OPEN_TICKET))
    assert codec.peek(orjson.dumps(values[:-1])) is None
    assert codec.peek(orjson.dumps([*values, 0])) is None


def test_an_instant_out_of_range_is_a_corrupt_state() -> None:
    kind, version, policy, due, *fields = orjson.loads(encode(OPEN_TICKET))
    opened_at = list(dataclasses.fields(Ticket)).index(
        next(f for f in dataclasses.fields(Ticket) if f.name == "opened_at")
    )
    fields[opened_at] = 10**18
    with pytest.raises(codec.CorruptState):
        codec.decode_state(orjson.dumps([kind, version, policy, due, *fields]))


def test_policy_fingerprints_name_the_content() -> None:
    demo = Path(codec.__file__).parent / "sla" / "demo_policy.toml"
    assert load_policy(EXTENDED).fingerprint == POLICY.fingerprint  # the same, loaded again
    assert load_policy(demo).fingerprint != POLICY.fingerprint
    assert load_policy().fingerprint != POLICY.fingerprint  # the seed's, without the extras
    assert len(POLICY.fingerprint) == 12


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
    back = codec.decode_state(encode(ticket))
    assert isinstance(back, Ticket)
    assert back.opened_at == T0
    assert back.opened_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b"{}", b'["t"]', b'["x", 1]', b'["t", 99]',
     encode(ALL[0])[:-1] + b', 1]', version_1(ALL[0])[:-1] + b', 1]', b'["m", 1, "M", "planned"]',
     b'["m", 2, "p", null, "M", "planned"]', b"null"],
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
    state = engine.decide(None, parse_event(opened), POLICY).state
    assert state is not None
    tracemalloc.start()
    kept = [encode(state) for _ in range(1000)]
    retained = tracemalloc.get_traced_memory()[0] / len(kept)
    tracemalloc.stop()
    assert retained < 2 * len(kept[0]) + 64
