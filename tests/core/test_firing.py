"""The firing rule on a small model of Kafka: for any interleaving of appends, reads, re-keying,
ticks, commits, crashes and restarts, the outputs emitted equal replay of the events appended
before each firing decision; under exactly-once none twice; nothing missing.

The model is the stream's own logic (`processor.stream`) on plain lists: input partitions
written in time order (each subject keyed to one partition, often not its owner's), a re-key
log per partition, one worker reading any source at any moment, ticks decided with a
`firing.Barrier` and fired with `engine.advance` (when read back, or with the record of the
partition that makes the barrier ready), state stored after every record and every tick. A crash loses what was not committed: at-least-once keeps every output sent and every
state written up to the last commit; exactly-once keeps outputs, states and offsets of committed
transactions only.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from processor.partitioning import partition_of
from processor.replay import read_events, replay
from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.firing import Barrier, Fetched, caught_up, read_up_to
from processor.sla.outputs import Output
from schemas.cloudevents import InputEvent, parse_event
from tests.core.factories import DEFAULT_POLICY, T0
from tests.histories import histories

PARTITIONS = 2
Key = tuple[str, str]


# -- the rule's arithmetic -------------------------------------------------------------------


def test_applied_up_to_the_end_is_caught_up() -> None:
    assert caught_up(applied=10, end=10, fetched=None)
    assert not caught_up(applied=9, end=10, fetched=None)


def test_markers_at_the_end_count_once_the_position_passed_them_with_nothing_in_hand() -> None:
    # Records up to 7, then commit markers up to 10: no applied record reaches 10.
    assert caught_up(applied=8, end=10, fetched=Fetched(handed=8, position=10))
    assert not caught_up(applied=6, end=10, fetched=Fetched(handed=8, position=10))  # in hand
    assert not caught_up(applied=8, end=10, fetched=Fetched(handed=8, position=9))
    assert not caught_up(applied=8, end=10, fetched=Fetched(handed=8, position=None))


def test_a_barrier_waits_for_its_inputs_then_for_what_they_forwarded() -> None:
    barrier = Barrier(T0, {("in", 0): 5, ("in", 1): 3}, ("rk", 0), 2, decided_at=0.0)
    applied = {("in", 0): 5, ("in", 1): 2, ("rk", 0): 2}
    assert not barrier.inputs_read(applied, {})
    applied[("in", 1)] = 3
    assert barrier.inputs_read(applied, {})
    assert not barrier.ready(applied, {})  # forwards not counted yet
    barrier.count_forwards(4)  # the inputs forwarded two records, landed at offsets 2 and 3
    assert not barrier.ready(applied, {})
    assert barrier.unread(applied, {}) == [("rk", 0)]
    applied[("rk", 0)] = 4
    assert barrier.ready(applied, {})
    assert read_up_to({}, {}, {})


# -- the model ---------------------------------------------------------------------------------


@dataclass
class Record:
    event: InputEvent
    raw: bytes


@dataclass
class Durable:
    """What survives a crash."""

    states: dict[Key, engine.State] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)


@dataclass
class Model:
    exactly_once: bool
    script: list[Record]
    inputs: dict[int, list[Record]] = field(default_factory=dict)
    rekeyed: dict[int, list[Record]] = field(default_factory=dict)
    uncommitted_forwards: dict[int, list[Record]] = field(default_factory=dict)
    appended: int = 0
    now: datetime = T0
    # the worker's memory
    states: dict[Key, engine.State] = field(default_factory=dict)
    applied: dict[tuple[str, int], int] = field(default_factory=dict)
    forwarded: dict[int, int] = field(default_factory=dict)
    barriers: dict[int, Barrier] = field(default_factory=dict)
    ticks: dict[int, list[datetime]] = field(default_factory=dict)
    sent: list[Output] = field(default_factory=list)  # this transaction's outputs (exactly-once)
    durable: Durable = field(default_factory=Durable)
    decisions: list[tuple[int, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for p in range(PARTITIONS):
            self.inputs[p], self.rekeyed[p], self.ticks[p] = [], [], []
            self.uncommitted_forwards[p] = []

    # appends: published in time order, a subject always to the same (possibly wrong) partition
    def append(self) -> None:
        if self.appended == len(self.script):
            return
        record = self.script[self.appended]
        self.appended += 1
        self.now = max(self.now, record.event.time)
        upstream = len(record.event.subject) % PARTITIONS  # a stable key, not murmur2
        self.inputs[upstream].append(record)

    # reads
    def read(self, source: str, p: int) -> None:
        log = self.inputs[p] if source == "in" else self.rekeyed[p]
        at = self.applied.get((source, p), self.durable.offsets.get((source, p), 0))
        if at >= len(log):
            return
        record = log[at]
        self.applied[(source, p)] = at + 1
        owner = partition_of(record.event.subject, PARTITIONS)
        if source == "in" and owner != p:
            if self.exactly_once:
                self.uncommitted_forwards[owner].append(record)
            else:
                self.rekeyed[owner].append(record)
            landed = len(self.rekeyed[owner]) + len(self.uncommitted_forwards[owner])
            self.forwarded[owner] = max(self.forwarded.get(owner, 0), landed)
        else:
            self.apply(record.event)
        self.fire_held(p)

    def fire_held(self, p: int) -> None:
        """A record of partition `p` was just handled: its held tick fires with it if ready
        (`Holds.take_ready`), in the same unit of work."""
        barrier = self.barriers.get(p)
        if barrier is None:
            return
        if not barrier.forwards_counted and barrier.inputs_read(self.applied, {}):
            barrier.count_forwards(self.forwarded.get(p, 0))
        if barrier.ready(self.applied, {}):
            del self.barriers[p]
            self.advance(p, barrier.upto)

    def apply(self, event: InputEvent) -> None:
        key = (engine.domain_of(event), event.subject)
        try:
            decision = engine.decide(self.states.get(key), event, DEFAULT_POLICY)
        except Rejected:
            return
        self.emit(decision.outputs)
        self.store(key, decision.state)

    # ticks: decided at `now`, sent once the barrier holds, fired when read
    def decide(self) -> None:
        following = (
            self.script[self.appended].event.time if self.appended < len(self.script) else None
        )
        if following is not None and following <= self.now:
            return  # an event of this very instant is still to come: deciding now makes it late
        ends = {("in", p): len(self.inputs[p]) for p in range(PARTITIONS)}
        decided = False
        for p in range(PARTITIONS):
            if p not in self.barriers:
                self.barriers[p] = Barrier(self.now, ends, ("rk", p), len(self.rekeyed[p]), 0.0)
                decided = True
        if decided:
            self.decisions.append((self.appended, self.now))

    def send_ready(self) -> None:
        for p, barrier in list(self.barriers.items()):
            if not barrier.forwards_counted and barrier.inputs_read(self.applied, {}):
                barrier.count_forwards(self.forwarded.get(p, 0))
            if barrier.ready(self.applied, {}):
                self.ticks[p].append(barrier.upto)
                del self.barriers[p]

    def fire(self, p: int) -> None:
        if not self.ticks[p]:
            return
        self.advance(p, self.ticks[p].pop(0))

    def advance(self, p: int, upto: datetime) -> None:
        for key, state in sorted(self.states.items()):
            if partition_of(key[1], PARTITIONS) != p:
                continue
            decision = engine.advance(state, upto, DEFAULT_POLICY)
            self.emit(decision.outputs)
            self.store(key, decision.state)

    def emit(self, outputs: tuple[Output, ...]) -> None:
        if self.exactly_once:
            self.sent.extend(outputs)
        else:
            self.durable.outputs.extend(outputs)

    def store(self, key: Key, state: engine.State | None) -> None:
        if state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = state

    # commits and crashes
    def commit(self) -> None:
        self.durable.states = dict(self.states)
        self.durable.offsets.update(self.applied)
        self.durable.outputs.extend(self.sent)
        self.sent = []
        for p, records in self.uncommitted_forwards.items():
            self.rekeyed[p].extend(records)
            records.clear()

    def crash(self) -> None:
        """Memory, uncommitted transactions and ticks in flight are gone (ticks of an earlier
        ownership are ignored); at-least-once keeps what it sent."""
        self.states = dict(self.durable.states)
        self.applied = {}
        self.barriers = {}
        self.ticks = {p: [] for p in range(PARTITIONS)}
        self.sent = []
        for records in self.uncommitted_forwards.values():
            records.clear()
        self.forwarded = {p: len(self.rekeyed[p]) for p in range(PARTITIONS)}

    def finish(self) -> None:
        """Everything appended, read and committed, then one last tick everywhere."""
        while self.appended < len(self.script):
            self.append()
        for _ in range(3):  # inputs, then what they forwarded (committed), then that read
            for p in range(PARTITIONS):
                for source in ("in", "rk"):
                    for _ in range(len(self.script) + 1):
                        self.read(source, p)
            self.commit()
        self.send_ready()  # ticks decided earlier go out and fire first
        self.fire_all()
        self.now += timedelta(seconds=1)
        self.decide()
        self.send_ready()
        self.fire_all()
        self.commit()

    def fire_all(self) -> None:
        for p in range(PARTITIONS):
            while self.ticks[p]:
                self.fire(p)


def replay_ids(model: Model, appended: int, until: datetime) -> set[str]:
    lines = [r.raw for r in model.script[:appended]]
    result = replay(read_events(lines, io.StringIO()), DEFAULT_POLICY, until, io.StringIO())
    return {o.id for o in result.outputs}


@st.composite
def steps(draw: st.DrawFn) -> list[str]:
    """Steps of one run; how often the worker reads, against appends and ticks, varies per run
    (from never, so ticks are decided with everything unread, to keeping up)."""
    reads, ticks = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    pool = (
        ["append"] * 6 + ["read in 0", "read in 1", "read rk 0", "read rk 1"] * reads
        + ["decide", "send", "fire 0", "fire 1"] * ticks + ["commit", "crash"]
    )  # fmt: skip
    return draw(st.lists(st.sampled_from(pool), min_size=10, max_size=120))


def run(model: Model, steps: list[str]) -> None:
    for step in steps:
        match step.split():
            case ["append"]:
                model.append()
            case ["read", source, p]:
                model.read(source, int(p))
            case ["decide"]:
                model.decide()
            case ["send"]:
                model.send_ready()
            case ["fire", p]:
                model.fire(int(p))
            case ["commit"]:
                model.commit()
            case ["crash"]:
                model.crash()
    model.finish()


def script(seed: int) -> list[Record]:
    span = timedelta(days=2)
    rows = histories(
        seed, tickets=5, maintenances=1, start=T0, end=T0 + span, policy=DEFAULT_POLICY
    )
    return [Record(parse_event(raw), raw) for _, raw in rows]


# A ticket opened and read, its next events appended and not: a tick fired on that state, by
# the ticks topic or by the stream with a record, emits what those events cancel.
STALE = ["append"] * 5 + ["read in 1", "decide", "send", "fire 1"]


@settings(max_examples=200, deadline=None)
@example(seed=979, steps=STALE, exactly_once=False, burst=False)
@example(seed=979, steps=STALE, exactly_once=True, burst=False)
@given(seed=st.integers(0, 10_000), steps=steps(), exactly_once=st.booleans(), burst=st.booleans())
def test_outputs_equal_replay_of_what_was_appended_before_each_firing(
    seed: int, steps: list[str], exactly_once: bool, burst: bool
) -> None:
    """Events are published as they happen (never after a tick decided past their time), or a
    whole history at once before anything is read (a burst, a backlog, a fresh group)."""
    model = Model(exactly_once, script(seed))
    if burst:
        model.now = model.script[-1].event.time if model.script else T0
        while model.appended < len(model.script):
            model.append()
    run(model, steps)
    emitted = [o.id for o in model.durable.outputs]
    _, until = model.decisions[-1]
    expected = replay_ids(model, len(model.script), until)
    for appended, upto in model.decisions:  # no firing decision saw more than replay says
        assert replay_ids(model, appended, upto) <= expected
    assert set(emitted) == expected
    if exactly_once:
        assert [i for i, n in Counter(emitted).items() if n > 1] == []
