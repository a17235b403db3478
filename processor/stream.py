"""The agent's behaviour: parse at the edge, re-key, call the engine, emit, and fire on ticks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from faust.types import TP, EventT, TableT

from processor import codec
from processor.metrics import Metrics
from processor.partitioning import partition_of
from processor.settings import ProcessingGuarantee
from processor.sla import engine
from processor.sla.deadlines import DeadlineIndex
from processor.sla.exceptions import Rejected
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
from processor.timers import Backlog, Deadlines, epoch, instant
from processor.topology import Topology
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
_CUT_MARGIN = timedelta(milliseconds=1)
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


def _ahead(due_us: int | None, mark_us: int | None) -> bool:
    """A stored next deadline still stands: none, or after the partition's fired watermark."""
    return due_us is None or mark_us is None or due_us > mark_us


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
        self._backlog_topics = [*self._inputs, self._rekeyed]
        self._holding = False  # some owned partition is still reading its backlog
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
        if self._holding:
            self.deadlines.note(message.partition, message.topic, message.offset)
        key = message.key if isinstance(message.key, bytes) else None
        origin = Origin(message.topic, message.partition, message.offset, key)
        # A null value (tombstone) stays null on its way to the dead-letter topic.
        value = event.value if isinstance(event.value, bytes) else None
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
            await self._send(
                self.topology.rekeyed, event.subject.encode(), raw, origin.headers(), partition
            )
            return
        await self._apply(event, origin, raw, partition)

    async def _apply(self, event: InputEvent, origin: Origin, raw: bytes, partition: int) -> None:
        domain = engine.domain_of(event)
        table = self._table(domain)
        before = self._load(table, event.subject)
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
        fired = self.deadlines.partitions.get(partition)
        watermark = instant(fired.fired_up_to) if fired and fired.fired_up_to is not None else None
        # Outputs from deadlines before the event that a tick already fired are not sent again.
        fresh = [
            o
            for o in decision.outputs
            if watermark is None or o.time >= event.time or o.time > watermark
        ]
        overdue, next_deadline = self._overdue(before, decision, watermark)
        await self._emit(fresh, partition, timer=False)
        await self._emit(overdue, partition, timer=True)
        self._store(table, event.subject, decision.state, decision.next_deadline, partition, before)
        self.deadlines.arm(partition, state_key(domain, event.subject), next_deadline)
        self.metrics.events_processed.labels(origin.topic, event.type).inc()

    def _overdue(
        self, before: Any, decision: engine.AnyDecision, watermark: datetime | None
    ) -> tuple[list[Output], datetime | None]:
        """Deadlines a late event put at or before the fired watermark, and the next one after.

        Ticks fired everything of `before` up to the watermark and the next tick fires only what
        is after it, so what the event added in between is fired here (or it would be lost).
        """
        due = decision.next_deadline
        if watermark is None or decision.state is None or due is None or due > watermark:
            return [], due
        advanced = engine.advance(decision.state, watermark, self.policy)
        fired = set() if before is None else {
            o.id for o in engine.advance(before, watermark, self.policy).outputs
        }  # fmt: skip
        # A state that expires by the watermark keeps its deadline: the next tick drops it.
        after = due if advanced.state is None else advanced.next_deadline
        return [o for o in advanced.outputs if o.id not in fired], after

    # -- ticks --------------------------------------------------------------------------------

    async def _tick(self, partition: int, raw: bytes) -> None:
        clock = self.deadlines.partitions.get(partition)
        if clock is None:
            return
        clock.tick_sent_at = None
        # The loop left this partition out of its sleep while the tick was in flight: let it plan
        # again with the partition's next deadline (else a sparse deadline waited up to a second).
        # Deadlines re-armed while firing below wake it too, through `Deadlines.arm`.
        self.deadlines.wake()
        try:
            upto = int(raw) * _US + instant(0)
        except ValueError:
            log.warning("malformed tick ignored", extra={"partition": partition})
            return
        if clock.fired_up_to is not None and epoch(upto) <= clock.fired_up_to:
            return
        due = clock.index.pop_due(epoch(upto), TICK_BATCH)
        remaining = clock.index.peek()
        # The popped keys fire up to the tick's instant; but with the batch cut short, only what
        # is due before the first unfired deadline is complete, and the watermark says no more
        # (kept a millisecond clear of it: epoch floats are exact to a microsecond at best). Many
        # deadlines at one instant thus drain over several ticks.
        mark = upto
        if remaining is not None and remaining <= epoch(upto):
            mark = min(upto, instant(remaining) - _CUT_MARGIN)
        acks = [await self._fire(partition, key, upto, clock.fired_up_to) for key, _ in due]
        await asyncio.gather(*(ack for batch in acks for ack in batch))
        if clock.fired_up_to is None or epoch(mark) > clock.fired_up_to:
            clock.fired_up_to = epoch(mark)
            self.topology.watermarks[str(partition).encode()] = str(
                int(epoch(mark) * 1_000_000)
            ).encode()

    async def _fire(
        self, partition: int, key: str, upto: datetime, watermark: float | None
    ) -> list[Awaitable[Any]]:
        domain = "maintenance" if key.startswith("m:") else "ticket"
        subject = key[2:]
        table = self._table(domain)
        state = self._load(table, subject)
        if state is None:
            return []
        decision = engine.advance(state, upto, self.policy)
        fresh = [o for o in decision.outputs if watermark is None or epoch(o.time) > watermark]
        acks = await self._emit(fresh, partition, timer=True)
        if decision.state is None:
            self._store(table, subject, None, None, partition, state)
        self.deadlines.arm(partition, key, decision.next_deadline)
        return acks

    # -- partitions ---------------------------------------------------------------------------

    def rebuild(self, partitions: set[int]) -> None:
        """Rebuild the deadline indexes of newly owned partitions from their tables.

        A state stored under the current policy carries its next deadline (`codec.peek`); only
        one that is due by its partition's watermark (ticks fired part of it), stored under
        another policy, or stored by version 1 is decoded to compute its deadline again.
        """
        partitions = {p for p in partitions if p not in self.deadlines.partitions}
        if not partitions:
            return
        started = self.clock()
        marks = {p: self._watermark(p) for p in partitions}
        marks_us = {p: None if m is None else (m - instant(0)) // _US for p, m in marks.items()}
        items: dict[int, list[tuple[str, float]]] = {p: [] for p in partitions}
        counts: dict[int, Counter[tuple[str, str]]] = {p: Counter() for p in partitions}
        decoded = 0
        policy = self.policy.fingerprint
        for domain in ("ticket", "maintenance"):
            for partition, key, raw in self._stored(domain, partitions):
                subject = key.decode(errors="replace")
                head = codec.peek(raw)
                if head is not None and head[0] == policy and _ahead(head[1], marks_us[partition]):
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
            mark = marks[partition]
            self.deadlines.own(
                partition,
                DeadlineIndex.from_items(items[partition]),
                None if mark is None else epoch(mark),
                held=True,
            )
            self.open_tickets[partition] = counts[partition]
        self._holding = True
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
        self._holding = bool(self.deadlines.held())

    async def catch_up(self) -> None:
        """Let held partitions fire once the records their inputs held at take-over are processed.

        Only what this worker reads counts: an event re-keyed to a partition by another worker
        after the take-over is a late event (its deadlines fire as `_overdue` says).
        """
        consumer = self.topology.app.consumer
        for partition in self.deadlines.held():
            clock = self.deadlines.partitions[partition]
            tps = [TP(topic, partition) for topic in self._backlog_topics]
            if clock.backlog is None:
                # The end offsets of the first fetch after the take-over (the last stable ones
                # in exactly-once mode); none before that fetch.
                ends = [consumer.highwater(tp) for tp in tps]
                if any(end is None for end in ends):
                    continue
                clock.backlog = Backlog(
                    {tp.topic: end for tp, end in zip(tps, ends, strict=True)}, time.monotonic()
                )
            backlog = clock.backlog
            unread = backlog.unread()
            found = await asyncio.gather(*(consumer.position(TP(t, partition)) for t in unread))
            if backlog.read(dict(zip(unread, found, strict=True)), time.monotonic()):
                self.deadlines.unhold(partition)
                log.info(
                    "backlog processed, deadlines fire",
                    extra={
                        "partition": partition,
                        "seconds": round(time.monotonic() - backlog.started, 3),
                    },
                )
        self._holding = bool(self.deadlines.held())

    def _decoded_deadline(
        self, subject: str, raw: bytes, mark: datetime | None, now: datetime
    ) -> tuple[float | None, tuple[str, str] | None] | None:
        """(next deadline in epoch seconds, open-ticket label) of a stored state, decoded;
        None for a value that cannot be decoded."""
        try:
            state = codec.decode_state(raw)
            due = self._rearm_due(state, mark, now)
        except Exception:  # one bad value must not stop a take-over; it is logged, with its id
            log.exception("corrupt state skipped", extra={"subject": subject})
            return None
        return (None if due is None else epoch(due)), _open_label(state)

    def _rearm_due(
        self, state: engine.State, mark: datetime | None, now: datetime
    ) -> datetime | None:
        due = engine.next_deadline(state, self.policy)
        if due is None or mark is None or due > mark:
            return due
        # Already fired up to the watermark: the next deadline is the first one after it.
        advanced = engine.advance(state, mark, self.policy)
        return now if advanced.state is None else advanced.next_deadline

    def _watermark(self, partition: int) -> datetime | None:
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

    def _load(self, table: TableT[bytes, bytes], subject: str) -> Any:
        raw = table.get(subject.encode())
        if raw is None:
            return None
        try:
            return codec.decode_state(raw)
        except codec.CorruptState:
            log.exception("corrupt state dropped", extra={"subject": subject})
            return None

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

    async def send_tick(self, partition: int, now: float) -> None:
        """Ticks bypass transactions: they must be visible at once, and carry no state."""
        driver = self._driver()
        value = str(int(now * 1_000_000)).encode()
        await driver.send(self._ticks, None, value, partition, None, None, transactional_id=None)
