"""`SlaStream._tick` and `_apply` without Kafka: what a tick fires, stores and ignores.

The stream fires at most TICK_BATCH deadlines per tick. A batch cut short in the middle of one
instant (a mass outage: every ticket opened in the same second) must still fire the popped
deadlines and leave the rest for the next tick, each exactly once. A tick stores the states it
advanced, so nothing is fired twice whatever comes next; a tick of an earlier ownership of the
partition is ignored.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from processor import codec, holds, stream, timelines
from processor.instants import epoch
from processor.metrics import Metrics
from processor.replay import read_events, replay
from processor.sending import Origin, encode_tick
from processor.settings import Settings
from processor.sla import engine
from processor.sla.firing import Fetched, caught_up
from processor.sla.outputs import OutputTopic
from processor.sla.policy import load_policy
from processor.sla.ticket import Ticket
from processor.sla.timeline import timeline
from processor.stream import SlaStream
from schemas.cloudevents import parse_event

POLICY = load_policy(Path(stream.__file__).parent / "sla" / "demo_policy.toml")
OPENED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
BREACH = OPENED + timedelta(seconds=5)  # high, premium: the initial-response target


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.calls = 0
        self.fail_on: int | None = None  # the call (counted from 1) that fails, if any

    async def send(self, topic: str, key: Any, value: bytes, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("broker gone")
        self.sent.append((topic, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def opened(subject: str, at: datetime = OPENED) -> engine.State:
    raw = orjson.dumps({
        "specversion": "1.0", "id": f"{subject}-1", "source": "t", "type": "ticket.opened",
        "time": at.isoformat(), "subject": subject,
        "data": {"customer_id": "c", "support_tier": "premium", "severity": "high"},
    })  # fmt: skip
    state = engine.decide(None, parse_event(raw), POLICY).state
    assert state is not None
    return state


def stored(state: engine.State) -> bytes:
    """The table value the worker stores for `state`."""
    return codec.encode_state(state, engine.next_deadline(state, POLICY), POLICY.fingerprint)


@dataclass
class _Message:
    """A Kafka record as Faust hands it to the agent."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class _Event:
    message: _Message
    value: bytes | None


@dataclass(frozen=True)
class _TP:
    topic: str
    partition: int


@dataclass
class _App:
    producer: _Producer


@dataclass
class Wired:
    """The stream's topology as plain values (`processor.topology.Wiring`): dicts for tables."""

    app: _App
    tickets: dict[bytes, bytes]
    settings: Settings = field(default_factory=lambda: Settings(store="memory://",
                                                                topic_partitions=1))  # fmt: skip
    maintenances: dict[bytes, bytes] = field(default_factory=dict)
    watermarks: dict[bytes, bytes] = field(default_factory=dict)
    dead_letters: dict[str, _Topic] = field(default_factory=dict)
    rekeyed: _Topic = field(default_factory=lambda: _Topic("rekeyed"))
    ticks: _Topic = field(default_factory=lambda: _Topic("ticks"))
    outputs: dict[OutputTopic, _Topic] = field(
        default_factory=lambda: {kind: _Topic(kind.value) for kind in OutputTopic}
    )

    @property
    def partitions(self) -> int:
        return self.settings.topic_partitions


def wired(sla: SlaStream) -> Wired:
    assert isinstance(sla.topology, Wired)
    return sla.topology


def a_stream(tickets: int) -> tuple[SlaStream, _Producer, dict[bytes, bytes]]:
    producer = _Producer()
    states = {f"B-{i:03d}".encode(): stored(opened(f"B-{i:03d}")) for i in range(tickets)}
    topology = Wired(_App(producer), states)
    sla = SlaStream(topology, POLICY, Metrics(CollectorRegistry()), lambda: BREACH)
    sla.rebuild({0})
    return sla, producer, topology.watermarks


def tick(sla: SlaStream, at: datetime, token: str | None = None) -> bytes:
    """A tick record for partition 0, decided at `at` by its current owner (or `token`)."""
    return encode_tick(at, token or sla.deadlines.partitions[0].token)


def breaches(producer: _Producer) -> list[str]:
    return [
        orjson.loads(v)["subject"]
        for t, v in producer.sent
        if t not in ("ticks", "dead-letters") and orjson.loads(v)["type"] == "sla.breach"
    ]


async def test_one_instant_larger_than_a_batch_drains_over_several_ticks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stream, "TICK_BATCH", 5)
    sla, producer, _ = a_stream(tickets=12)
    record = tick(sla, BREACH + timedelta(seconds=1))
    fired = []
    for _ in range(3):  # 5 + 5 + 2
        await sla._tick(0, record)
        fired.append(len(breaches(producer)))
    assert fired == [5, 10, 12]
    assert sorted(breaches(producer)) == [f"B-{i:03d}" for i in range(12)]  # each once
    await sla._tick(0, record)  # the same tick again: nothing more
    assert len(breaches(producer)) == 12
    # Every ticket is re-armed for its next deadline (step 2, 10 s after the opening).
    assert sla.deadlines.partitions[0].index.peek() == epoch(OPENED + timedelta(seconds=10))


async def test_a_tick_stores_what_it_fired_so_nothing_fires_twice() -> None:
    sla, producer, _ = a_stream(tickets=1)
    await sla._tick(0, tick(sla, BREACH))
    assert breaches(producer) == ["B-000"]
    state, version = codec.decode_stored(wired(sla).tickets[b"B-000"])
    assert version == codec.VERSION
    assert isinstance(state, Ticket)
    assert state.breached_at == BREACH
    sla.release({0})
    sla.rebuild({0})  # a restart: the index comes from the stored state alone
    await sla._tick(0, tick(sla, OPENED + timedelta(seconds=11)))
    assert breaches(producer) == ["B-000"]  # not again; step 2 fired instead
    steps = [orjson.loads(v)["data"]["step"] for _, v in producer.sent if b"escalation" in v]
    assert steps == [2]


async def test_a_tick_of_an_earlier_ownership_is_ignored() -> None:
    """Decided before a restart or by the previous owner: its inputs may not be applied here."""
    sla, producer, _ = a_stream(tickets=3)
    stale = tick(sla, BREACH)
    sla.release({0})
    sla.rebuild({0})
    in_flight = sla.deadlines.partitions[0].sent(BREACH.timestamp(), 0.0)
    await sla._tick(0, stale)
    await sla._tick(0, b"12345")  # malformed: no token
    assert producer.sent == []
    assert sla.metrics.ticks_ignored._value.get() == 2
    assert sla.deadlines.partitions[0].in_flight == [in_flight]  # not taken for this owner's
    await sla._tick(0, tick(sla, BREACH))
    assert len(breaches(producer)) == 3


async def test_deadlines_an_event_leaves_due_wait_for_the_next_tick() -> None:
    """A ticket opened long ago, read now: its breach is not emitted while the event is
    applied (its response may be the next record), only by a tick, which waits for it."""
    sla, producer, _ = a_stream(tickets=0)
    raw = orjson.dumps({
        "specversion": "1.0", "id": "L-1", "source": "t", "type": "ticket.opened",
        "time": OPENED.isoformat(), "subject": "LATE",
        "data": {"customer_id": "c", "support_tier": "premium", "severity": "high"},
    })  # fmt: skip
    await sla._apply(parse_event(raw), Origin("in", 0, 0), raw, 0)
    types_sent = [orjson.loads(v)["type"] for _, v in producer.sent]
    assert types_sent == ["sla.escalation"]  # step 1, at the opening itself
    assert sla.deadlines.partitions[0].index.due_of("t:LATE") == epoch(BREACH)
    await sla._tick(0, tick(sla, OPENED + timedelta(seconds=11)))
    assert breaches(producer) == ["LATE"]


async def test_a_returned_tick_wakes_the_loop_to_plan_the_next_deadline() -> None:
    """While a tick is in flight the loop sleeps without that partition's deadlines; when it
    comes back the loop must plan again at once, or a sparse deadline waits up to a second."""
    sla, _, _ = a_stream(tickets=1)
    record = tick(sla, BREACH)
    sla.deadlines._wake.clear()
    await sla._tick(0, record)
    assert sla.deadlines._wake.is_set()
    sla.deadlines._wake.clear()
    await sla._tick(0, record)  # a repeated tick, nothing to fire: the loop still plans again
    assert sla.deadlines._wake.is_set()


async def test_the_first_record_of_each_assigned_partition_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where reading resumed after a take-over: one line per topic partition, again after a
    release (a revocation); the offsets a seek to the committed offsets should give."""
    sla, _, _ = a_stream(tickets=1)
    value = tick(sla, BREACH)

    def record(offset: int) -> Any:
        return _Event(_Message("ticks", 0, offset), value)

    caplog.set_level("INFO", logger="processor.stream")
    for offset in (5, 6, 7):
        await sla.handle(record(offset))
    sla.release({0})
    sla.rebuild({0})
    await sla.handle(record(3))
    reads = [r for r in caplog.records if r.getMessage() == "partition read from"]
    assert [(vars(r)["topic"], vars(r)["partition"], vars(r)["offset"]) for r in reads] == [
        ("ticks", 0, 5),
        ("ticks", 0, 3),
    ]


async def test_a_tick_that_fails_stores_nothing_and_fires_again() -> None:
    """An output that cannot be sent: nothing is stored, every popped deadline stays armed, and
    the next tick fires them all (at-least-once in the failure case)."""
    sla, producer, _ = a_stream(tickets=3)
    producer.fail_on = producer.calls + 2  # the second send from here
    before = dict(wired(sla).tickets)
    with pytest.raises(RuntimeError):
        await sla._tick(0, tick(sla, BREACH))
    assert dict(wired(sla).tickets) == before
    assert len(sla.deadlines.partitions[0].index) == 3
    assert sla.deadlines.partitions[0].index.peek() == epoch(BREACH)
    producer.fail_on = None
    await sla._tick(0, tick(sla, BREACH))
    assert sorted(set(breaches(producer))) == ["B-000", "B-001", "B-002"]


async def test_an_earlier_release_s_state_that_expired_by_its_watermark_is_forgotten() -> None:
    sla, producer, _ = a_stream(tickets=0)
    raw = orjson.dumps({
        "specversion": "1.0", "id": "OLD-2", "source": "t", "type": "ticket.closed",
        "time": OPENED.isoformat(), "subject": "OLD",
    })  # fmt: skip
    closed = engine.decide(opened("OLD"), parse_event(raw), POLICY).state
    assert closed is not None
    kind, _, policy, due, *fields = orjson.loads(stored(closed))
    fields = fields[: codec._LAYOUTS[kind].older]  # without the fields of version 4
    wired(sla).tickets[b"OLD"] = orjson.dumps([kind, 2, policy, due, *fields])  # that release's
    mark = OPENED + POLICY.closed_ticket_retention + timedelta(seconds=1)
    wired(sla).watermarks[b"0"] = str(int(epoch(mark) * 1_000_000)).encode()
    sla.release({0})
    sla.rebuild({0})
    assert sla.deadlines.partitions[0].index.peek() is not None  # armed to be forgotten
    await sla._tick(0, tick(sla, mark + timedelta(seconds=1)))
    assert b"OLD" not in wired(sla).tickets
    assert producer.sent == []


class _Ends:
    """End offsets as `EndOffsets.ask` gives them, from a dict."""

    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends

    async def ask(self, sources: Any) -> dict[tuple[str, int], int]:
        return {source: self.ends.get(source, 0) for source in sources}


def _tombstones(sla: SlaStream, partition: int = 0) -> Any:
    """Records of the tickets topic that carry a tombstone: dead-lettered, applied all the same."""
    tickets = sla.topology.settings.topic_tickets
    wired(sla).dead_letters = {tickets: _Topic("dead-letters")}

    def record(offset: int) -> Any:
        return _Event(_Message(tickets, partition, offset), None)

    return record


def ticks_sent(producer: _Producer) -> list[bytes]:
    return [value for topic, value in producer.sent if topic == "ticks"]


async def test_a_held_tick_fires_with_the_record_that_applies_its_last_input() -> None:
    sla, producer, _ = a_stream(tickets=1)
    record = _tombstones(sla)
    sla.holds.end_offsets = _Ends({(sla.topology.settings.topic_tickets, 0): 2})
    await sla.decide_ticks([0], BREACH.timestamp())
    assert sla.deadlines.held() == [0]
    await sla.send_ready_ticks()
    assert ticks_sent(producer) == []  # offsets 0 and 1 of its input not applied yet
    sla.deadlines._wake.clear()
    await sla.handle(record(0))
    assert not sla.deadlines._wake.is_set()  # not yet what the held tick waits for
    assert breaches(producer) == []
    await sla.handle(record(1))
    assert sla.deadlines._wake.is_set()  # the loop plans the partition's next tick
    assert breaches(producer) == ["B-000"]  # fired in that record's unit of work
    assert sla.deadlines.held() == []
    await sla.send_ready_ticks()
    assert ticks_sent(producer) == []  # no trip through Kafka
    assert sla.deadlines.partitions[0].in_flight == []
    await sla._tick(0, tick(sla, BREACH))  # a tick of the same instant after it: nothing again
    assert breaches(producer) == ["B-000"]


async def test_a_record_of_another_partition_does_not_fire_the_held_tick() -> None:
    sla, producer, _ = a_stream(tickets=1)
    record = _tombstones(sla, partition=1)  # not the partition whose tick is held
    sla.holds.end_offsets = _Ends({})
    await sla.decide_ticks([0], BREACH.timestamp())
    await sla.handle(record(0))
    assert breaches(producer) == []
    assert sla.deadlines.held() == [0]
    await sla.send_ready_ticks()  # nothing of partition 0 in hand: a tick goes out
    assert ticks_sent(producer) == [tick(sla, BREACH)]
    assert sla.deadlines.held() == []


async def test_a_ready_tick_waits_for_a_record_in_hand_then_goes_out_if_it_never_comes() -> None:
    sla, producer, _ = a_stream(tickets=1)
    tickets = sla.topology.settings.topic_tickets
    sla.holds.end_offsets = _Ends({})
    now = [100.0]
    sla.holds.monotonic = lambda: now[0]
    await sla.decide_ticks([0], BREACH.timestamp())
    sla.positions.fetched[(tickets, 0)] = Fetched(
        handed=1, position=1
    )  # offset 0 handed, not applied
    await sla.send_ready_ticks()
    assert ticks_sent(producer) == []  # left to the stream: that record fires it
    now[0] += holds.IN_HAND_GRACE_SECONDS - 0.01
    await sla.send_ready_ticks()
    assert ticks_sent(producer) == []
    now[0] += 0.02  # the record never came (a batch dropped on a rebalance)
    await sla.send_ready_ticks()
    assert ticks_sent(producer) == [tick(sla, BREACH)]
    assert breaches(producer) == []  # fired when the tick comes back, not here


async def test_a_seek_forgets_what_the_client_reported_fetched_before_it() -> None:
    """A position reported before a seek back would count records never applied as read."""
    sla, _, _ = a_stream(tickets=1)
    tickets = sla.topology.settings.topic_tickets
    sla.positions.fetched[(tickets, 0)] = Fetched(handed=0, position=40)
    sla.positions.fetched[(tickets, 1)] = Fetched(handed=3, position=3)
    assert caught_up(0, 40, sla.positions.fetched[(tickets, 0)])
    sla.on_seek([_TP(tickets, 0)])
    assert (tickets, 0) not in sla.positions.fetched
    assert not caught_up(0, 40, sla.positions.fetched.get((tickets, 0)))
    assert sla.positions.fetched[(tickets, 1)] == Fetched(handed=3, position=3)  # not sought: kept


async def test_the_stream_records_the_timeline_replay_gives() -> None:
    """Applied, refused and repeated events and what events and ticks emitted: the worker's
    timeline of a ticket is replay's, but for when each output was actually sent."""
    sla, _, _ = a_stream(tickets=0)
    wired(sla).dead_letters["in"] = _Topic("in.dlq")

    def line(n: str, type_: str, seconds: float, data: Any = None) -> bytes:
        body: dict[str, Any] = {"specversion": "1.0", "id": n, "source": "t", "type": type_,
                                "time": (OPENED + timedelta(seconds=seconds)).isoformat(),
                                "subject": "TL"}  # fmt: skip
        return orjson.dumps(body if data is None else {**body, "data": data})

    opened = line("1", "ticket.opened", 0, {"customer_id": "c", "support_tier": "premium",
                                             "severity": "high"})  # fmt: skip
    refused = line("2", "ticket.reopened", 1)  # not resolved
    responded = line("3", "ticket.responded", 12, {"agent_id": "A-1"})
    for raw in (opened, refused, opened):  # the repeat is ignored, and shown
        await sla._apply(parse_event(raw), Origin("in", 0, 0), raw, 0)
    await sla._tick(0, tick(sla, OPENED + timedelta(seconds=11)))
    await sla._apply(parse_event(responded), Origin("in", 0, 1), responded, 0)
    as_of = OPENED + timedelta(seconds=12)
    state, text = sla.states.load_value(engine.Domain.TICKET, "TL", None, 0)
    entries, dropped = timelines.entries(text)
    live = timeline("TL", entries, dropped, state, POLICY, as_of)

    lines = [opened, refused, opened, responded]
    done = replay(read_events(lines, io.StringIO()), POLICY, as_of, io.StringIO(), "TL")
    replayed = timeline("TL", done.timeline, 0, done.tickets["TL"], POLICY, as_of)

    def measured_apart(answer: dict[str, Any]) -> dict[str, Any]:
        for output in answer["outputs"]:
            del output["emitted_at"], output["lateness"]
        return answer

    assert [o["type"] for o in live["outputs"]] == [
        "sla.escalation", "sla.breach", "sla.escalation"]  # fmt: skip
    assert [r["reason"] for r in live["rejected"]] == ["not_resolved", "duplicate"]
    assert [e["type"] for e in live["events"]] == ["ticket.opened", "ticket.responded"]
    assert measured_apart(live) == measured_apart(replayed)
