"""The agent's behaviour: parse at the edge, re-key, call the engine, emit, and fire held ticks.

Each record is one unit of work of its partition (its transaction under exactly-once, its
changelog partition, its offset): the events it applies and the deadlines it fires are stored and
sent within it. The jobs around it have rooms of their own: `state` (the tables), `sending`
(what goes to Kafka), `positions` (how far each source is read), `holds` (ticks waiting for
their inputs) and `timers` (deadline indexes and the loop).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faust.types import EventT

from processor.end_offsets import EndOffsets
from processor.faust_fixes.internals import set_current_event
from processor.holds import Holds
from processor.instants import epoch, instant
from processor.metrics import Metrics
from processor.partitioning import partition_of
from processor.positions import ReadPositions
from processor.sending import Origin, Sender, parse_tick
from processor.settings import ProcessingGuarantee
from processor.sla import engine
from processor.sla.deadlines import DeadlineIndex
from processor.sla.exceptions import Rejected
from processor.sla.outputs import Output
from processor.state import States, split_key, state_key
from processor.timelines import Timelines
from processor.timers import Deadlines, PartitionClock
from processor.topology import Wiring, credentials
from processor.writes import Writes
from schemas.cloudevents import (
    MAINTENANCE_TYPES,
    TICKET_TYPES,
    InputEvent,
    InvalidEvent,
    parse_record,
)

log = logging.getLogger(__name__)

# Deadlines fired per tick; a larger burst continues on the next tick, right away, and the
# records already fetched run in between. Measured on a 100k burst (bench/timers, 2026-12-02,
# bench/results/faust-costs-2026-12-02/): events arriving meanwhile waited p99 about 1 s
# instead of 8-10 s at 20,000, for a drain about 17% longer (more tick round trips).
TICK_BATCH = 250


class SlaStream:
    """Everything the agent does with one record, and the partitions' ownership."""

    def __init__(
        self,
        topology: Wiring,
        policies: engine.Policies,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.topology = topology
        self.policies = engine.as_set(policies)
        self.metrics = metrics
        self.clock = clock
        settings = topology.settings
        self._inputs = {
            settings.topic_tickets: TICKET_TYPES,
            settings.topic_maintenance: MAINTENANCE_TYPES,
        }
        self._rekeyed = topology.rekeyed.get_topic_name()
        self._ticks = topology.ticks.get_topic_name()
        eos = settings.processing_guarantee is ProcessingGuarantee.EXACTLY_ONCE
        self.deadlines = Deadlines()
        self.sender = Sender(topology, metrics, clock, eos)
        # Tables with a store of a known kind are written by batch; others (the tests' plain
        # mappings) one key at a time, through their own methods.
        self.writes = Writes(topology.app, self.sender.transactional_id, eos)
        self.states = States(topology, self.policies, self.writes)
        self.timelines = Timelines(settings.timeline_entries)
        # Every topic read with the tables' partitioning: a record of any of them may fire the
        # partition's held tick.
        self.positions = ReadPositions((*self._inputs, self._rekeyed, self._ticks))
        self.end_offsets = EndOffsets(settings.kafka_bootstrap_servers, credentials(settings), eos)
        self.holds = Holds(
            topology, self.deadlines, self.positions, self.sender, self.end_offsets, metrics,
            tuple(self._inputs),
        )  # fmt: skip
        # Held per record: Faust commits between records only (faust_fixes.record_commits).
        self.record_lock = asyncio.Lock()
        self._incarnation = uuid.uuid4().hex[:12]
        self._ownerships = 0
        # Source partitions read since they were (last) assigned: the first record of each is
        # logged, to show where a take-over resumed.
        self._reading: set[tuple[str, int]] = set()
        self.last_record: float | None = None  # when a record was last done with (monotonic)

    # -- records ------------------------------------------------------------------------------

    async def handle(self, event: EventT[bytes]) -> None:
        """One record, as a batch of its own."""
        await self.handle_batch((event,))

    async def handle_batch(self, events: Sequence[EventT[bytes]]) -> None:
        """Records taken together, each applied in turn as its own unit of work would be (one
        that fails is logged by its ids and the next goes on), then the batch's table writes
        sent to the changelogs. Commits wait for the whole batch (`record_lock`), and the
        records are acknowledged after it, so every committed offset comes with its writes.
        """
        async with self.record_lock:
            try:
                for event in events:
                    set_current_event(event)
                    try:
                        await self._record(event)
                    except Exception:
                        message = event.message
                        log.exception("record failed", extra={"topic": message.topic,
                            "partition": message.partition, "offset": message.offset})  # fmt: skip
            except BaseException:
                # Cancelled (a stop): none of the batch is acknowledged, and its changelog
                # records must not go out later, perhaps to partitions another worker owns.
                self.writes.discard()
                raise
            await self.writes.flush()

    async def _record(self, event: EventT[bytes]) -> None:
        message = event.message
        source = (message.topic, message.partition)
        if source not in self._reading:
            self._reading.add(source)
            log.info(
                "partition read from",
                extra={
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                },
            )
        try:
            await self._dispatch(message, event.value)
        finally:  # done with, whatever became of it
            self.last_record = time.monotonic()
            if self.positions.done(source, message.offset):
                self.deadlines.wake()  # a held tick may be ready
        ready = self.holds.take_ready(message.partition)
        if ready is not None:
            clock, barrier = ready
            await self._fire_up_to(message.partition, clock, barrier.upto)

    async def _dispatch(self, message: Any, raw: Any) -> None:
        key = message.key if isinstance(message.key, bytes) else None
        # A null value (tombstone) stays null on its way to the dead-letter topic.
        value = raw if isinstance(raw, bytes) else None
        if message.topic == self._ticks:
            await self._tick(message.partition, value or b"")
            return
        headers = message.headers or ()
        pairs = tuple(headers.items() if isinstance(headers, Mapping) else headers)
        if message.topic == self._rekeyed:
            real = Origin.from_headers(pairs, key)
            if real is None:  # not written by a worker: nowhere to dead-letter it
                self.metrics.events_rejected.labels(message.topic, "invalid_envelope").inc()
                log.warning("re-keyed record without its origin skipped", extra={
                    "partition": message.partition, "offset": message.offset})  # fmt: skip
                return
            await self._input(real, value, message.partition, rekeyed=True)
        else:
            origin = Origin(message.topic, message.partition, message.offset, key, pairs)
            await self._input(origin, value, message.partition, rekeyed=False)

    async def _input(
        self, origin: Origin, raw: bytes | None, partition: int, *, rekeyed: bool
    ) -> None:
        reject = self.sender.dead_letter
        try:
            event = parse_record(raw, origin.upstream)
        except InvalidEvent as exc:
            await reject(origin, raw, exc.reason, type(exc).__name__, str(exc), partition)
            return
        if event.type not in self._inputs.get(origin.topic, ()):
            message = f"{event.type} does not belong on {origin.topic}"
            await reject(origin, raw, "wrong_topic", "InvalidEvent", message, partition)
            return
        owner = partition_of(event.subject, self.topology.partitions)
        if owner != partition and not rekeyed:
            # Upstream keyed (or partitioned) it differently: move it to the subject's partition.
            ack = await self.sender.forward(event.subject, raw, origin, partition)
            self.holds.track_forward(owner, ack)
            return
        await self._apply(event, origin, raw or b"", partition)

    async def _apply(self, event: InputEvent, origin: Origin, raw: bytes, partition: int) -> None:
        """Apply one event: what the engine decides is emitted at once (it depends on this
        subject's earlier events only); deadlines it leaves due fire on the next tick."""
        domain = engine.domain_of(event)
        before, timeline = self.states.load_value(
            domain, event.subject, self._legacy_mark(partition), partition
        )
        try:
            decision = engine.decide(before, event, self.policies)
        except Rejected as exc:
            await self.sender.dead_letter(
                origin, raw, exc.reason, type(exc).__name__, str(exc), partition
            )
            if before is not None and self.timelines.limit:  # a known ticket's refusal is shown
                self._keep(domain, event.subject, before, partition,
                           self.timelines.rejected(timeline, event, exc.reason))  # fmt: skip
            return
        if decision.duplicate:
            if self.timelines.limit:
                self._keep(domain, event.subject, before, partition,
                           self.timelines.applied(timeline, event, decision, self.clock()))  # fmt: skip
            self.metrics.duplicates.labels(origin.topic).inc()
            log.info(
                "duplicate event ignored", extra={"subject": event.subject, "event_id": event.id}
            )
            return
        await self.sender.outputs(decision.outputs, partition, timer=False)
        timeline = self.timelines.applied(timeline, event, decision, self.clock())
        self.states.store(domain, event.subject, decision.state, decision.next_deadline,
                          partition, before, timeline)  # fmt: skip
        self.deadlines.arm(partition, state_key(domain, event.subject), decision.next_deadline)
        self.metrics.events_processed.labels(origin.topic, event.type).inc()

    def _keep(
        self, domain: engine.Domain, subject: str, state: Any, partition: int, timeline: str
    ) -> None:
        """Store an unchanged state again, with its timeline grown (a refusal, a repeat)."""
        due = engine.next_deadline(state, self.policies)
        self.states.store(domain, subject, state, due, partition, state, timeline)

    # -- firing -------------------------------------------------------------------------------

    async def _tick(self, partition: int, raw: bytes) -> None:
        """Fire what is due up to the tick's instant, then store the states it advanced."""
        clock = self.deadlines.partitions.get(partition)
        tick = parse_tick(raw)
        if clock is None or tick is None or tick[1] != clock.token:
            # Decided by an earlier owner, or before a restart: its inputs may not be applied here.
            self.metrics.ticks_ignored.inc()
            return
        upto = tick[0]
        clock.came_back(epoch(upto))
        # The loop left this partition out of its sleep while the tick was in flight: let it plan
        # again with the partition's next deadline (else a sparse deadline waited up to a second).
        self.deadlines.wake()
        await self._fire_up_to(partition, clock, upto)

    async def _fire_up_to(self, partition: int, clock: PartitionClock, upto: datetime) -> None:
        due = clock.index.pop_due(epoch(upto), TICK_BATCH)
        fired: list[_Fired] = []
        try:
            for key, _ in due:
                firing = await self._fire(partition, key, upto, clock.legacy_mark)
                if firing is not None:
                    fired.append(firing)
            await asyncio.gather(*(ack for firing in fired for ack in firing.acks))
        except BaseException:
            # Nothing is stored: every popped deadline fires again at the next tick.
            for key, seconds in due:
                self.deadlines.arm(partition, key, instant(seconds))
            raise
        # Stored only once the outputs are acknowledged: a crash before then fires them again.
        now = self.clock()
        for f in fired:
            timeline = self.timelines.fired(f.timeline, f.domain, f.outputs, now)
            self.states.store(f.domain, f.subject, f.state, f.next_deadline, partition, f.before,
                              timeline)  # fmt: skip
            self.deadlines.arm(partition, f.key, f.next_deadline)

    async def _fire(
        self, partition: int, key: str, upto: datetime, legacy_mark: datetime | None
    ) -> _Fired | None:
        domain, subject = split_key(key)
        state, timeline = self.states.load_value(domain, subject, legacy_mark, partition)
        if state is None:
            # Gone, corrupt, or a value of an earlier release that expired by its watermark.
            self.states.forget(domain, subject, partition)
            return None
        decision = engine.advance(state, upto, self.policies)
        acks = await self.sender.outputs(decision.outputs, partition, timer=True)
        return _Fired(key, domain, subject, state, decision.state, decision.next_deadline,
                      decision.outputs, timeline, acks)  # fmt: skip

    # -- what the deadline loop asks (timers.Ticker) ------------------------------------------

    async def decide_ticks(self, partitions: list[int], now: float) -> None:
        await self.holds.decide(partitions, now)

    async def send_ready_ticks(self) -> None:
        await self.holds.send_ready()

    # -- partitions ---------------------------------------------------------------------------

    def rebuild(self, partitions: set[int]) -> None:
        """Own newly assigned partitions: rebuild their deadline indexes from their tables."""
        partitions = {p for p in partitions if p not in self.deadlines.partitions}
        if not partitions:
            return
        started = self.clock()
        found = self.states.index(partitions, started)
        self.positions.forget(partitions)  # reported after the release, if at all
        for partition in sorted(partitions):
            self._ownerships += 1
            token = f"{self._incarnation}.{self._ownerships}"
            index = DeadlineIndex.from_items(found.deadlines[partition])
            self.deadlines.own(partition, PartitionClock(index, token, found.marks[partition]))
            self.states.open_tickets[partition] = found.open_tickets[partition]
        elapsed = (self.clock() - started).total_seconds()
        self.metrics.rebuilds.observe(elapsed)
        log.info(
            "deadline indexes rebuilt",
            extra={
                "partitions": sorted(partitions),
                "deadlines": sum(map(len, found.deadlines.values())),
                "decoded": found.decoded,
                "seconds": elapsed,
            },
        )

    def release(self, partitions: set[int]) -> None:
        self._reading = {tp for tp in self._reading if tp[1] not in partitions}
        for partition in partitions:
            self.deadlines.release(partition)
            self.states.open_tickets.pop(partition, None)
        # Read again from the committed offsets by whoever owns it next.
        self.positions.forget(partitions)

    def on_fetched(
        self, consumer: Any, partitions: Iterable[Any], records: Mapping[Any, Any]
    ) -> None:
        self.positions.on_fetched(consumer, partitions, records)

    def on_seek(self, partitions: Iterable[Any]) -> None:
        self.positions.on_seek(partitions)

    def _legacy_mark(self, partition: int) -> datetime | None:
        clock = self.deadlines.partitions.get(partition)
        return None if clock is None else clock.legacy_mark


@dataclass(frozen=True, slots=True)
class _Fired:
    """One key fired by a tick: what to store once its outputs are acknowledged."""

    key: str
    domain: engine.Domain
    subject: str
    before: engine.State
    state: engine.State | None  # advanced; None: forget the subject
    next_deadline: datetime | None
    outputs: tuple[Output, ...]
    timeline: str  # the ticket's timeline text, as loaded
    acks: list[Awaitable[Any]]
