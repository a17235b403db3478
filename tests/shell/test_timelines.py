"""Timeline texts kept in the ticket's table value: appended without parsing, cut to a limit
keeping the opening, carried by the codec without being read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from processor import codec, timelines
from processor.sla import engine
from processor.sla.policy import load_policy
from processor.timelines import Timelines
from schemas.cloudevents import parse_event

POLICY = load_policy()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(n: int, type_: str, minutes: float = 0, data: dict[str, str] | None = None) -> bytes:
    body = {"specversion": "1.0", "id": f"e{n}", "source": "t", "type": type_,
            "time": (T0 + timedelta(minutes=minutes)).isoformat(), "subject": "T-1"}  # fmt: skip
    return orjson.dumps(body if data is None else {**body, "data": data})


OPENED = event(0, "ticket.opened", 0, {"customer_id": "c", "support_tier": "basic",
                                       "severity": "low"})  # fmt: skip


def history(count: int, limit: int) -> str:
    """The opening, then `count` updates, kept with `limit`."""
    keep = Timelines(limit)
    state, text = None, ""
    for n, raw in enumerate(
        [OPENED, *(event(i + 1, "ticket.updated", i + 1) for i in range(count))]
    ):
        decision = engine.decide(state, parse_event(raw), POLICY)
        text = keep.applied(text, parse_event(raw), decision, T0)
        state = decision.state
        assert n < 1 or text.count("\n") <= limit
    return text


def test_a_full_timeline_keeps_the_opening_and_the_newest_entries() -> None:
    found, dropped = timelines.entries(history(count=9, limit=4))
    assert [e["id"] for e in found] == ["e0", "e7", "e8", "e9"]
    assert dropped == 6


def test_below_the_limit_nothing_is_dropped() -> None:
    found, dropped = timelines.entries(history(count=2, limit=200))
    assert [e["id"] for e in found] == ["e0", "e1", "e2"]
    assert dropped == 0


def test_a_limit_of_zero_keeps_nothing() -> None:
    assert history(count=3, limit=0) == ""
    assert timelines.entries("") == ([], 0)


def test_repeats_and_refusals_are_entries_with_their_reason() -> None:
    keep = Timelines(10)
    opened = parse_event(OPENED)
    decision = engine.decide(None, opened, POLICY)
    text = keep.applied("", opened, decision, T0)
    text = keep.applied(text, opened, engine.decide(decision.state, opened, POLICY), T0)
    text = keep.rejected(text, parse_event(event(1, "ticket.reopened", 5)), "not_resolved")
    found, _ = timelines.entries(text)
    assert [(e["kind"], e.get("reason")) for e in found] == [
        ("event", None), ("rejected", "duplicate"), ("rejected", "not_resolved")]  # fmt: skip


@pytest.mark.parametrize("text", ["", history(count=3, limit=200)])
def test_the_codec_carries_the_timeline_and_peek_still_reads_the_due(text: str) -> None:
    state = engine.decide(None, parse_event(OPENED), POLICY).state
    assert state is not None
    due = engine.next_deadline(state, POLICY)
    raw = codec.encode_state(state, due, POLICY.fingerprint, text)
    assert codec.decode_value(raw) == (state, codec.VERSION, text)
    assert codec.decode_state(raw) == state
    head = codec.peek(raw)
    assert head is not None
    assert head.due_us == codec.micros(due) if due else head.due_us is None


def test_a_value_with_a_trailing_element_that_is_no_text_is_corrupt() -> None:
    state = engine.decide(None, parse_event(OPENED), POLICY).state
    assert state is not None
    values = orjson.loads(codec.encode_state(state, None, POLICY.fingerprint))
    for tail in (7, None, ["x"]):
        raw = orjson.dumps([*values, tail])
        assert codec.peek(raw) is None
        with pytest.raises(codec.CorruptState):
            codec.decode_value(raw)
