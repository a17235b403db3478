"""The agent's behaviour: parse at the edge, re-key, call the engine, emit, and fire on ticks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from faust.types import TP, EventT, TableT

from processor import codec
from processor.end_offsets import EndOffsets
from processor.metrics import Metrics
from processor.partitioning import partition_of
from processor.settings import ProcessingGuarantee
from processor.sla import engine
from processor.sla.deadlines import DeadlineIndex
from processor.sla.exceptions import Rejected
from processor.sla.firing import Barrier, Fetched, Source
from processor.sla.outputs import (
    Breach,
    Escalation,
    MaintenanceNotice,
    Output,
    UpdateDue,
    cloudevent,
)
from processor.sla.policy import Policy
from processor.sla.ticket import Phase, Ticket
from processor.timers import Deadlines, PartitionClock, epoch, instant
from processor.topology import Topology, credentials
from schemas.cloudevents import (
    MAINTENANCE_TYPES,
    TICKET_TYPES,
    InputEvent,
    InvalidEvent,
    parse_event,
)

log = logging.getLogger(__name__)

# Deadlines fired per tick; a larger burst continues on the next tick, right away.
TICK_BATCH = 20_000
_US = timedelta(microseconds=1)
# A decided tick still waiting for its inputs after this long is logged (once) with what it waits for.
HOLD_WARNING_SECONDS = 30.0
# How long one round waits for the acknowledgements of forwards before it looks at other partitions.
FORWARD_WAIT_SECONDS = 0.05
# A held tick whose inputs are applied is left this long to the stream while a record of its
# partition is in hand (`SlaStream._in_hand`); then it is sent as a tick.
IN_HAND_GRACE_SECONDS = 0.25
_ORIGIN = ("sla-origin-topic", "sla-origin-partition", "sla-origin-offset")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an input record came from, for dead-letter headers and logs; `key` is its key (for a
    re-keyed record, the re-keyed one: the subject)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        values = (self.topic, str(self.partition), str(self.offset))
        return [(name, value.encode()) for name, value in zip(_ORIGIN, values, strict=True)]

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]], key: bytes | None) -> Origin | None:
        found = {k: v.decode() for k, v in headers if k in _ORIGIN}
        if len(found) != len(_ORIGIN):
            return None
        return cls(found[_ORIGIN[0]], int(found[_ORIGIN[1]]), int(found[_ORIGIN[2]]), key)


def state_key(domain: str, subject: str) -> str:
    return f"{domain[0]}:{subject}"


def _open_label(state: object) -> tuple[str, str] | None:
    """The `sla_open_tickets` labels (severity, tier) of an open ticket; None for anything else."""
    if isinstance(state, Ticket) and state.phase is Phase.OPEN:
        return state.severity.value, state.tier.value
    return None


class SlaStream:
    """Everything the agent does with one record, and the per-partition deadline bookkeeping."""

    def __init__(
        self,
        topology: Topology,
        policy: Policy,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.topology = topology
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.deadlines = Deadlines()
        self.open_tickets: dict[int, Counter[tuple[str, str]]] = {}
        settings = topology.settings
        self._inputs = {
            settings.topic_tickets: TICKET_TYPES,
            settings.topic_maintenance: MAINTENANCE_TYPES,
        }
        self._rekeyed = topology.rekeyed.get_topic_name()
        self._ticks = topology.ticks.get_topic_name()
        self._eos = settings.processing_guarantee is ProcessingGuarantee.EXACTLY_ONCE
        self.end_offsets = EndOffsets(
            settings.kafka_bootstrap_servers, credentials(settings), self._eos
        )
        # How far each source partition (inputs and re-key topic) is read: ticks wait for it.
        # `applied` is written by the stream; `fetched` by the Kafka client's thread, one value
        # per source at a time (`on_fetched`).
        self.applied: dict[Source, int] = {}
        self.fetched: dict[Source, Fetched] = {}
        # Per re-key partition: the offset after the last forward acknowledged, and the forwards
        # still in flight.
        self._forwarded: dict[int, int] = {}
        self._forwarding: dict[int, set[asyncio.Future[Any]]] = {}
        # Per source, the offset a held tick waits for (the lowest): reaching it wakes the loop.
        self._awaited: dict[Source, int] = {}
        # Held per record: Faust commits between records only (service.commit_between_records).
        self.record_lock = asyncio.Lock()
        # Every topic read with the tables' partitioning: a record of any of them may fire the
        # partition's held tick (`_fire_held`).
        self._partition_topics = (*self._inputs, self._rekeyed, self._ticks)
        self._kick = False  # a held tick found its inputs unread since the take-over
        self._warming: asyncio.Future[None] | None = None
        self._incarnation = uuid.uuid4().hex[:12]
        self._ownerships = 0
        # Source partitions read since they were (last) assigned: the first record of each is
        # logged, to show where a take-over resumed.
        self._reading: set[tuple[str, int]] = set()

    # -- records ------------------------------------------------------------------------------

    async def handle(self, event: EventT[bytes]) -> None:
        message = event.message
        if (message.topic, message.partition) not in self._reading:
            self._reading.add((message.topic, message.partition))
            log.info(
                "partition read from",
                extra={
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                },
            )
        async with self.record_lock:
            try:
                await self._dispatch(message, event.value)
            finally:  # done with, whatever became of it
                source, done = (message.topic, message.partition), message.offset + 1
                self.applied[source] = done
                awaited = self._awaited.get(source)
                if awaited is not None and done >= awaited:
                    del self._awaited[source]
                    self.deadlines.wake()  # a held tick may be ready
            await self._fire_held(message.partition)

    def on_fetched(
        self, consumer: Any, partitions: Iterable[Any], records: Mapping[Any, Any]
    ) -> None:
        """After each fetch, on the Kafka client's thread: what it handed over, and its position.

        Each source's value is replaced whole, so the stream never sees half of one update.
        """
        try:
            assignment = consumer._subscription.subscription.assignment
        except AttributeError:  # no subscription: nothing to trust
            return
        if assignment is None:
            return
        sources = self._partition_topics
        fetched = self.fetched
        for tp in partitions:
            if tp.topic not in sources:
                continue
            state = assignment.state_value(tp)
            position = state.position if state is not None and state.has_valid_position else None
            source = (tp.topic, tp.partition)
            batch = records.get(tp)
            if batch:
                handed = batch[-1].offset + 1
            else:
                previous = fetched.get(source)
                handed = previous.handed if previous is not None else 0
            fetched[source] = Fetched(handed, position)

    def on_seek(self, partitions: Iterable[Any]) -> None:
        """The client was sought (to committed offsets, or to the beginning): what it reported
        it had fetched of these partitions before no longer holds."""
        for tp in partitions:
            self.fetched.pop((tp.topic, tp.partition), None)

    async def _dispatch(self, message: Any, raw: Any) -> None:
        key = message.key if isinstance(message.key, bytes) else None
        origin = Origin(message.topic, message.partition, message.offset, key)
        # A null value (tombstone) stays null on its way to the dead-letter topic.
        value = raw if isinstance(raw, bytes) else None
        if message.topic == self._ticks:
            await self._tick(message.partition, value or b"")
        elif message.topic == self._rekeyed:
            headers = message.headers or []
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            real = Origin.from_headers(pairs, key) or origin
            await self._input(real, value, message.partition, rekeyed=True)
        else:
            await self._input(origin, value, message.partition, rekeyed=False)

    async def _input(
        self, origin: Origin, raw: bytes | None, partition: int, *, rekeyed: bool
    ) -> None:
        if raw is None:
            message = "a null value (tombstone) is not an event"
            await self._dead_letter(
                origin, None, "malformed_json", "InvalidEvent", message, partition
            )
            return
        try:
            event = parse_event(raw)
        except InvalidEvent as exc:
            await self._dead_letter(
                origin, raw, exc.reason, type(exc).__name__, str(exc), partition
            )
            return
        if event.type not in self._inputs.get(origin.topic, ()):
            message = f"{event.type} does not belong on {origin.topic}"
            await self._dead_letter(origin, raw, "wrong_topic", "InvalidEvent", message, partition)
            return
        owner = partition_of(event.subject, self.topology.partitions)
        if owner != partition and not rekeyed:
            # Upstream keyed (or partitioned) it differently: move it to the subject's partition.
            ack = await self._send(
                self.topology.rekeyed, event.subject.encode(), raw, origin.headers(), partition
            )
            self._track_forward(owner, ack)
            return
        await self._apply(event, origin, raw, partition)

    async def _apply(self, event: InputEvent, origin: Origin, raw: bytes, partition: int) -> None:
        """Apply one event: what the engine decides is emitted at once (it depends on this
        subject's earlier events only); deadlines it leaves due fire on the next tick."""
        domain = engine.domain_of(event)
        table = self._table(domain)
        before = self._load(table, event.subject, partition)
        try:
            decision = engine.decide(before, event, self.policy)
        except Rejected as exc:
            await self._dead_letter(
                origin, raw, exc.reason, type(exc).__name__, str(exc), partition
            )
            return
        if decision.duplicate:
            self.metrics.duplicates.labels(origin.topic).inc()
            log.info(
                "duplicate event ignored", extra={"subject": event.subject, "event_id": event.id}
            )
            return
        await self._emit(list(decision.outputs), partition, timer=False)
        self._store(table, event.subject, decision.state, decision.next_deadline, partition, before)
        self.deadlines.arm(partition, state_key(domain, event.subject), decision.next_deadline)
        self.metrics.events_processed.labels(origin.topic, event.type).inc()

    def _track_forward(self, partition: int, ack: Awaitable[Any]) -> None:
        """Remember where a forward to re-key partition `partition` lands, once acknowledged."""
        future = asyncio.ensure_future(ack)
        pending = self._forwarding.setdefault(partition, set())
        pending.add(future)

        def landed(done: asyncio.Future[Any]) -> None:
            pending.discard(done)
            if not done.cancelled() and done.exception() is None:
                end = done.result().offset + 1
                self._forwarded[partition] = max(self._forwarded.get(partition, 0), end)

        future.add_done_callback(landed)

    # -- ticks --------------------------------------------------------------------------------

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

    async def _fire_held(self, partition: int) -> None:
        """Fire the partition's held tick here, in the record of that partition just handled, if
        its inputs are applied: a tick through Kafka would wait behind the records in hand.

        Any record of the partition carries the same unit of work as a tick (its transaction
        under exactly-once, its changelog partition, its offset), so what fires here is stored
        and committed with it. Forwards still unacknowledged are left to the loop.
        """
        clock = self.deadlines.partitions.get(partition)
        barrier = None if clock is None else clock.barrier
        if clock is None or barrier is None:
            return
        applied, fetched = self.applied, self.fetched
        if not barrier.forwards_counted:
            if self._forwarding.get(partition) or not barrier.inputs_read(applied, fetched):
                return
            barrier.count_forwards(self._forwarded.get(partition, 0))
        if not barrier.ready(applied, fetched):
            return
        clock.barrier = None
        self.metrics.tick_hold.observe(time.monotonic() - barrier.decided_at)
        self.metrics.ticks_released.labels("record").inc()
        self.deadlines.wake()  # the next tick may be decided
        await self._fire_up_to(partition, clock, barrier.upto)

    async def _fire_up_to(self, partition: int, clock: PartitionClock, upto: datetime) -> None:
        due = clock.index.pop_due(epoch(upto), TICK_BATCH)
        fired: list[_Fired] = []
        try:
            for key, _ in due:
                firing = await self._fire(partition, key, upto)
                if firing is not None:
                    fired.append(firing)
            await asyncio.gather(*(ack for firing in fired for ack in firing.acks))
        except BaseException:
            # Nothing is stored: every popped deadline fires again at the next tick.
            for key, seconds in due:
                self.deadlines.arm(partition, key, instant(seconds))
            raise
        # Stored only once the outputs are acknowledged: a crash before then fires them again.
        for firing in fired:
            self._store(firing.table, firing.subject, firing.state, firing.next_deadline,
                        partition, firing.before)  # fmt: skip
            self.deadlines.arm(partition, firing.key, firing.next_deadline)

    async def _fire(self, partition: int, key: str, upto: datetime) -> _Fired | None:
        domain = "maintenance" if key.startswith("m:") else "ticket"
        subject = key[2:]
        table = self._table(domain)
        state = self._load(table, subject, partition)
        if state is None:
            # Gone, corrupt, or a value of an earlier release that expired by its watermark.
            table.pop(subject.encode(), None)
            return None
        decision = engine.advance(state, upto, self.policy)
        acks = await self._emit(list(decision.outputs), partition, timer=True)
        return _Fired(key, table, subject, state, decision.state, decision.next_deadline, acks)

    async def decide_ticks(self, partitions: list[int], now: float) -> None:
        """Decide a tick at `now` for each partition: take the end offsets it must wait for."""
        clocks = dict(self.deadlines.partitions)  # a rebalance while asking replaces them
        inputs = [TP(topic, p) for topic in self._inputs for p in sorted(clocks)]
        rekeyed = [TP(self._rekeyed, p) for p in partitions]
        ends = await self._end_offsets([*inputs, *rekeyed])
        upto, decided = instant(now), time.monotonic()
        input_ends = {(tp.topic, tp.partition): ends[tp] for tp in inputs}
        for tp in rekeyed:
            clock = clocks.get(tp.partition)
            if clock is None or self.deadlines.partitions.get(tp.partition) is not clock:
                continue
            if clock.may_decide():
                source = (tp.topic, tp.partition)
                clock.hold(Barrier(upto, input_ends, source, ends[tp], decided))

    async def send_ready_ticks(self) -> None:
        """Send each decided tick whose inputs are applied up to the offsets it took."""
        for partition in self.deadlines.held():
            await self._send_if_ready(partition)
        self._await_held()
        await self.kick_if_stalled()

    async def _send_if_ready(self, partition: int) -> None:
        """Send the partition's held tick if its inputs are read."""
        applied, fetched = self.applied, self.fetched
        clock = self.deadlines.partitions.get(partition)
        barrier = None if clock is None else clock.barrier
        if clock is None or barrier is None:
            return  # released meanwhile
        if not barrier.forwards_counted:
            if not barrier.inputs_read(applied, fetched):
                self._warn_if_stalled(partition, barrier)
                return
            pending = list(self._forwarding.get(partition, ()))
            if pending:
                _, unacknowledged = await asyncio.wait(pending, timeout=FORWARD_WAIT_SECONDS)
                if unacknowledged:
                    return  # looked at again on the next round
            barrier.count_forwards(self._forwarded.get(partition, 0))
        if not barrier.ready(applied, fetched):
            self._warn_if_stalled(partition, barrier)
            return
        if self.deadlines.partitions.get(partition) is not clock or clock.barrier is not barrier:
            return  # released, or fired by the stream, while waiting for the forwards
        sent_at = time.monotonic()
        if self._in_hand(partition):
            # The stream fires it with that record (`_fire_held`), sooner than a tick queued
            # behind it; unless the record never comes (a batch Faust dropped).
            if barrier.ready_since is None:
                barrier.ready_since = sent_at
            if sent_at - barrier.ready_since < IN_HAND_GRACE_SECONDS:
                return
        clock.barrier = None
        self.metrics.tick_hold.observe(sent_at - barrier.decided_at)
        self.metrics.ticks_released.labels("topic").inc()
        # Before the send: the tick may come back before it returns.
        entry = clock.sent(epoch(barrier.upto), sent_at)
        try:
            await self.send_tick(partition, barrier.upto, clock.token)
        except Exception:
            with contextlib.suppress(ValueError):  # decided again at once, not after a retry
                clock.in_flight.remove(entry)
            raise

    def _in_hand(self, partition: int) -> bool:
        """The Kafka client handed over a record of the partition that the stream has not yet
        applied."""
        applied = self.applied
        for topic in self._partition_topics:
            fetched = self.fetched.get((topic, partition))
            if fetched is not None and fetched.handed > applied.get((topic, partition), 0):
                return True
        return False

    def _await_held(self) -> None:
        awaited: dict[Source, int] = {}
        for clock in self.deadlines.partitions.values():
            if clock.barrier is not None:
                for source, end in clock.barrier.awaited(self.applied, self.fetched).items():
                    awaited[source] = min(end, awaited.get(source, end))
        self._awaited = awaited

    def _warn_if_stalled(self, partition: int, barrier: Barrier) -> None:
        waited = time.monotonic() - barrier.decided_at
        if waited < HOLD_WARNING_SECONDS or barrier.warned:
            return
        barrier.warned = True
        unread = barrier.unread(self.applied, self.fetched)
        log.warning(
            "deadlines held: inputs not yet read",
            extra={
                "partition": partition,
                "seconds": round(waited, 1),
                "unread": [f"{t}[{p}]" for t, p in unread],
            },
        )
        if not any(source in self.applied for source in unread):
            # Nothing of them read since the take-over: the consumer, not the stream, is stuck
            # (seen once in 40 restarts after a SIGKILL). Resuming what runs is a no-op.
            self._kick = True

    async def kick_if_stalled(self) -> None:
        """Resume the consumer's partitions, flow and fetcher when a held tick found nothing read."""
        if not self._kick:
            return
        self._kick = False
        app: Any = self.topology.app
        consumer = app.consumer
        log.error("fetching looks stalled: resuming the consumer")
        consumer.resume_partitions(set(consumer.assignment()))
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()

    def warm_end_offsets(self) -> None:
        """Connect the end-offsets client and learn its topics' leaders in the background now,
        not when the first deadline falls due (about 0.3 s the first time); never in the way
        of recovery, which waits for its callbacks."""
        if self._warming is None or self._warming.done():
            self._warming = asyncio.ensure_future(self._warm_end_offsets())

    async def _warm_end_offsets(self) -> None:
        owned = sorted(self.deadlines.partitions)
        topics = [*self._inputs, self._rekeyed]
        try:
            await self.end_offsets.ask((topic, p) for topic in topics for p in owned)
        except Exception as exc:  # the first tick asks again
            log.warning("end offsets not available yet", extra={"error": type(exc).__name__})

    async def _end_offsets(self, tps: list[TP]) -> dict[TP, int]:
        """End offsets as the consumer reads them (the last stable ones under exactly-once)."""
        found = await self.end_offsets.ask((tp.topic, tp.partition) for tp in tps)
        return {TP(topic, partition): offset for (topic, partition), offset in found.items()}

    # -- partitions ---------------------------------------------------------------------------

    def rebuild(self, partitions: set[int]) -> None:
        """Rebuild the deadline indexes of newly owned partitions from their tables.

        A state stored by this version under the current policy carries its next deadline
        (`codec.peek`); any other is decoded to compute it again.
        """
        partitions = {p for p in partitions if p not in self.deadlines.partitions}
        if not partitions:
            return
        started = self.clock()
        marks = {p: self._legacy_mark(p) for p in partitions}
        items: dict[int, list[tuple[str, float]]] = {p: [] for p in partitions}
        counts: dict[int, Counter[tuple[str, str]]] = {p: Counter() for p in partitions}
        decoded = 0
        policy = self.policy.fingerprint
        for domain in ("ticket", "maintenance"):
            for partition, key, raw in self._stored(domain, partitions):
                subject = key.decode(errors="replace")
                head = codec.peek(raw)
                if head is not None and head[0] == policy:
                    _, due_us, label = head
                    due = None if due_us is None else due_us / 1e6
                else:
                    decoded += 1
                    found = self._decoded_deadline(subject, raw, marks[partition], started)
                    if found is None:
                        continue  # corrupt, logged
                    due, label = found
                if due is not None:
                    items[partition].append((state_key(domain, subject), due))
                if label is not None:
                    counts[partition][label] += 1
        for partition in partitions:
            for topic in self._partition_topics:  # reported after the release, if at all
                self.applied.pop((topic, partition), None)
                self.fetched.pop((topic, partition), None)
            self._ownerships += 1
            token = f"{self._incarnation}.{self._ownerships}"
            index = DeadlineIndex.from_items(items[partition])
            self.deadlines.own(partition, PartitionClock(index, token, marks[partition]))
            self.open_tickets[partition] = counts[partition]
        elapsed = (self.clock() - started).total_seconds()
        self.metrics.rebuilds.observe(elapsed)
        log.info(
            "deadline indexes rebuilt",
            extra={
                "partitions": sorted(partitions),
                "deadlines": sum(map(len, items.values())),
                "decoded": decoded,
                "seconds": elapsed,
            },
        )

    def release(self, partitions: set[int]) -> None:
        self._reading = {tp for tp in self._reading if tp[1] not in partitions}
        for partition in partitions:
            self.deadlines.release(partition)
            self.open_tickets.pop(partition, None)
            # Read again from the committed offsets by whoever owns it next.
            for topic in self._partition_topics:
                self.applied.pop((topic, partition), None)
                self.fetched.pop((topic, partition), None)

    def _decoded_deadline(
        self, subject: str, raw: bytes, mark: datetime | None, now: datetime
    ) -> tuple[float | None, tuple[str, str] | None] | None:
        """(next deadline in epoch seconds, open-ticket label) of a stored state, decoded;
        None for a value that cannot be decoded."""
        try:
            state, version = codec.decode_stored(raw)
            if version in codec.LEGACY and mark is not None:
                advanced = engine.advance(state, mark, self.policy).state
                if advanced is None:
                    return epoch(now), None  # expired: the next tick forgets it
                state = advanced
            due = engine.next_deadline(state, self.policy)
        except Exception:  # one bad value must not stop a take-over; it is logged, with its id
            log.exception("corrupt state skipped", extra={"subject": subject})
            return None
        return (None if due is None else epoch(due)), _open_label(state)

    def _legacy_mark(self, partition: int) -> datetime | None:
        """The fired watermark an earlier release stored for `partition` (codec.LEGACY)."""
        raw = self.topology.watermarks.get(str(partition).encode())
        return None if raw is None else instant(0) + int(raw) * _US

    # -- tables -------------------------------------------------------------------------------

    def _table(self, domain: str) -> TableT[bytes, bytes]:
        return self.topology.maintenances if domain == "maintenance" else self.topology.tickets

    def _stored(self, domain: str, partitions: set[int]) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, value) of the states stored for `partitions`.

        The RocksDB store keeps one database per partition: read just those (a scan of the
        table would hash every key to find its partition). The memory store is one mapping,
        with standby copies of other workers' partitions: each key is hashed.
        """
        table = self._table(domain)
        store: Any = getattr(table, "data", None)
        if type(store).__module__ == "faust.stores.rocksdb":  # compared, not imported: a
            # memory-store worker never loads the RocksDB store's module
            for partition in sorted(partitions):
                db = store._dbs.get(partition)  # none: nothing stored there yet
                if db is not None:
                    for key, raw in store._visible_items(db):
                        yield partition, key, raw
            return
        for key, raw in table.items():
            partition = partition_of(key.decode(errors="replace"), self.topology.partitions)
            if partition in partitions:
                yield partition, key, raw

    def _load(self, table: TableT[bytes, bytes], subject: str, partition: int) -> Any:
        raw = table.get(subject.encode())
        if raw is None:
            return None
        try:
            state, version = codec.decode_stored(raw)
        except codec.CorruptState:
            log.exception("corrupt state dropped", extra={"subject": subject})
            return None
        clock = self.deadlines.partitions.get(partition)
        if version in codec.LEGACY and clock is not None and clock.legacy_mark is not None:
            # An earlier release fired it up to its partition's watermark without storing it.
            return engine.advance(state, clock.legacy_mark, self.policy).state
        return state

    def _store(
        self,
        table: TableT[bytes, bytes],
        subject: str,
        state: engine.State | None,
        due: datetime | None,
        partition: int,
        before: engine.State | None,
    ) -> None:
        """Store `state` with `due`, its next deadline (the decision's: the engine guarantees it
        equals `engine.next_deadline(state)`), or forget the subject."""
        if state is None:
            table.pop(subject.encode(), None)
        else:
            table[subject.encode()] = codec.encode_state(state, due, self.policy.fingerprint)
        self._count_open(partition, before, state)

    def _count_open(self, partition: int, before: Any, after: Any) -> None:
        counts = self.open_tickets.setdefault(partition, Counter())
        for state, delta in ((before, -1), (after, +1)):
            label = _open_label(state)
            if label is not None:
                counts[label] += delta

    # -- sending ------------------------------------------------------------------------------

    async def _emit(
        self, outputs: list[Output], partition: int, *, timer: bool
    ) -> list[Awaitable[Any]]:
        if not outputs:
            return []
        now = self.clock()
        acks = []
        for output in outputs:
            value = orjson.dumps(cloudevent(output, now))
            topic = self.topology.outputs[output.TOPIC]
            headers = [("content-type", b"application/cloudevents+json")]
            acks.append(await self._send(topic, output.subject.encode(), value, headers, partition))
            self._count_output(output, now, timer)
        return acks

    def _count_output(self, output: Output, now: datetime, timer: bool) -> None:
        m = self.metrics
        if isinstance(output, Escalation):
            m.escalations.labels(output.severity.value, str(output.step)).inc()
        elif isinstance(output, Breach):
            m.breaches.labels(output.target, output.severity.value, output.tier.value).inc()
        elif isinstance(output, UpdateDue):
            m.updates_due.labels(output.severity.value).inc()
        elif isinstance(output, MaintenanceNotice):
            m.notices.labels(output.type).inc()
        if timer:
            m.timer_lateness.observe(max((now - output.time).total_seconds(), 0.0))

    async def _dead_letter(
        self,
        origin: Origin,
        raw: bytes | None,
        reason: str,
        error: str,
        message: str,
        partition: int,
    ) -> None:
        self.metrics.events_rejected.labels(origin.topic, reason).inc()
        log.warning(
            "event rejected",
            extra={
                "reason": reason,
                "topic": origin.topic,
                "partition": origin.partition,
                "offset": origin.offset,
            },
        )
        headers = [
            ("sla-error-class", error.encode()),
            ("sla-error-reason", reason.encode()),
            ("sla-error-message", message[:1024].encode()),
            *origin.headers(),
        ]
        dlq = self.topology.dead_letters[origin.topic]
        if raw is None and origin.key is None:
            raw = b""  # aiokafka cannot send a record with neither key nor value
        await self._send(dlq, origin.key, raw, headers, partition)

    async def _send(
        self,
        topic: Any,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        partition: int,
    ) -> Awaitable[Any]:
        """Send in the transaction of the source partition being processed (exactly-once mode).

        Faust's own `topic.send` picks the transaction of the *destination* partition, which for
        an output topic is not a partition of this worker's consumer group at all.
        """
        app = self.topology.app
        driver = self._driver()
        transactional_id = None
        if self._eos:
            group = app.assignor.group_for_topic(self._ticks)
            transactional_id = f"{app.conf.id}-{group}-{partition}"
        result: Awaitable[Any] = await driver.send(
            topic.get_topic_name(),
            key,
            value,
            None,
            None,
            headers,
            transactional_id=transactional_id,
        )
        return result

    def _driver(self) -> Any:
        """Faust's aiokafka producer, in both modes (`app.producer`, never the transaction manager).

        Given a transactional id it sends through that partition's transactional producer,
        given none through its plain producer.
        """
        return self.topology.app.producer

    async def send_tick(self, partition: int, upto: datetime, token: str) -> None:
        """Ticks bypass transactions: they must be visible at once, and carry no state."""
        driver = self._driver()
        value = encode_tick(upto, token)
        await driver.send(self._ticks, None, value, partition, None, None, transactional_id=None)


def encode_tick(upto: datetime, token: str) -> bytes:
    return f"{(upto - instant(0)) // _US} {token}".encode()


def parse_tick(raw: bytes) -> tuple[datetime, str] | None:
    """(instant, ownership token) of a tick record; None for anything else."""
    try:
        micros, token = raw.decode().split(" ")
        return instant(0) + int(micros) * _US, token
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None


@dataclass(frozen=True, slots=True)
class _Fired:
    """One key fired by a tick: what to store once its outputs are acknowledged."""

    key: str
    table: TableT[bytes, bytes]
    subject: str
    before: engine.State
    state: engine.State | None  # advanced; None: forget the subject
    next_deadline: datetime | None
    acks: list[Awaitable[Any]]
