"""Held ticks: decided with their inputs' end offsets, released once the stream has applied them.

A tick of a partition is decided at an instant, with the end offsets of the worker's input
partitions and of the partition's re-key partition (`processor.sla.firing.Barrier`). Once they
are applied it is released: fired by the stream with a record of the partition it handles anyway
(`take_ready`, called after each record), or, with no record of the partition in hand, sent
through the ticks topic by the deadline loop (`send_ready`). The forwards the inputs made to the
partition's re-key partition are tracked here too: the barrier waits for where they landed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from processor.faust_fixes.internals import restart_fetcher
from processor.instants import epoch, instant
from processor.metrics import Metrics
from processor.positions import ReadPositions
from processor.sending import Sender
from processor.sla.firing import Barrier, Source
from processor.timers import Deadlines, PartitionClock
from processor.topology import Wiring

log = logging.getLogger(__name__)

# A decided tick still waiting for its inputs after this long is logged (once) with what it waits for.
HOLD_WARNING_SECONDS = 30.0
# How long one round waits for the acknowledgements of forwards before it looks at other partitions.
FORWARD_WAIT_SECONDS = 0.05
# A held tick whose inputs are applied is left this long to the stream while a record of its
# partition is in hand (`ReadPositions.in_hand`); then it is sent as a tick.
IN_HAND_GRACE_SECONDS = 0.25


class EndOffsetsSource(Protocol):
    """Where end offsets come from (`processor.end_offsets.EndOffsets` in the worker)."""

    async def ask(self, sources: Iterable[Source]) -> dict[Source, int]: ...


class Holds:
    """Decides ticks, and releases them once their inputs are applied."""

    def __init__(
        self,
        topology: Wiring,
        deadlines: Deadlines,
        positions: ReadPositions,
        sender: Sender,
        end_offsets: EndOffsetsSource,
        metrics: Metrics,
        inputs: tuple[str, ...],
    ) -> None:
        self.topology = topology
        self.deadlines = deadlines
        self.positions = positions
        self.sender = sender
        self.end_offsets = end_offsets
        self.metrics = metrics
        self._inputs = inputs
        self._rekeyed = topology.rekeyed.get_topic_name()
        # Per re-key partition: the offset after the last forward acknowledged, and the forwards
        # still in flight.
        self._forwarded: dict[int, int] = {}
        self._forwarding: dict[int, set[asyncio.Future[Any]]] = {}
        self.monotonic: Callable[[], float] = time.monotonic  # the clock of hold times
        self._kick = False  # a held tick found its inputs unread since the take-over
        self._warming: asyncio.Future[None] | None = None

    # -- forwards -----------------------------------------------------------------------------

    def track_forward(self, partition: int, ack: Awaitable[Any]) -> None:
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

    # -- deciding -----------------------------------------------------------------------------

    async def decide(self, partitions: list[int], now: float) -> None:
        """Decide a tick at `now` for each partition: take the end offsets it must wait for."""
        clocks = dict(self.deadlines.partitions)  # a rebalance while asking replaces them
        inputs = [(topic, p) for topic in self._inputs for p in sorted(clocks)]
        rekeyed = [(self._rekeyed, p) for p in partitions]
        ends = await self.end_offsets.ask([*inputs, *rekeyed])
        upto, decided = instant(now), self.monotonic()
        input_ends = {source: ends[source] for source in inputs}
        for source in rekeyed:
            partition = source[1]
            clock = clocks.get(partition)
            if clock is None or self.deadlines.partitions.get(partition) is not clock:
                continue
            if clock.may_decide():
                clock.hold(Barrier(upto, input_ends, source, ends[source], decided))

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

    # -- releasing ----------------------------------------------------------------------------

    def take_ready(self, partition: int) -> tuple[PartitionClock, Barrier] | None:
        """The partition's held tick, released to the stream if its inputs are applied (the
        stream handles a record of that partition). Forwards still unacknowledged are left to
        the loop."""
        held = self._held(partition)
        if held is None:
            return None
        clock, barrier = held
        applied, fetched = self.positions.applied, self.positions.fetched
        if not barrier.forwards_counted:
            if self._forwarding.get(partition) or not barrier.inputs_read(applied, fetched):
                return None
            barrier.count_forwards(self._forwarded.get(partition, 0))
        if not barrier.ready(applied, fetched):
            return None
        self._release(clock, barrier, "record", self.monotonic())
        self.deadlines.wake()  # the next tick may be decided
        return held

    def _held(self, partition: int) -> tuple[PartitionClock, Barrier] | None:
        clock = self.deadlines.partitions.get(partition)
        if clock is None or clock.barrier is None:
            return None
        return clock, clock.barrier

    def _release(self, clock: PartitionClock, barrier: Barrier, route: str, at: float) -> None:
        """The tick leaves the hold: fired by a record of its partition, or sent as a tick."""
        clock.barrier = None
        self.metrics.tick_hold.observe(at - barrier.decided_at)
        self.metrics.ticks_released.labels(route).inc()

    async def send_ready(self) -> None:
        """Send each decided tick whose inputs are applied up to the offsets it took, unless a
        record of its partition in hand will fire it."""
        for partition in self.deadlines.held():
            await self._send_if_ready(partition)
        held = self.deadlines.partitions.values()
        self.positions.await_held(c.barrier for c in held if c.barrier is not None)
        await self._kick_if_stalled()

    async def _send_if_ready(self, partition: int) -> None:
        held = self._held(partition)
        if held is None:
            return  # released meanwhile
        clock, barrier = held
        applied, fetched = self.positions.applied, self.positions.fetched
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
        sent_at = self.monotonic()
        if self.positions.in_hand(partition):
            # The stream fires it with that record (`take_ready`), sooner than a tick queued
            # behind it; unless the record never comes (a batch Faust dropped).
            if barrier.ready_since is None:
                barrier.ready_since = sent_at
            if sent_at - barrier.ready_since < IN_HAND_GRACE_SECONDS:
                return
        self._release(clock, barrier, "topic", sent_at)
        # Before the send: the tick may come back before it returns.
        entry = clock.sent(epoch(barrier.upto), sent_at)
        try:
            await self.sender.tick(partition, barrier.upto, clock.token)
        except Exception:
            with contextlib.suppress(ValueError):  # decided again at once, not after a retry
                clock.in_flight.remove(entry)
            raise

    def _warn_if_stalled(self, partition: int, barrier: Barrier) -> None:
        waited = self.monotonic() - barrier.decided_at
        if waited < HOLD_WARNING_SECONDS or barrier.warned:
            return
        barrier.warned = True
        applied, fetched = self.positions.applied, self.positions.fetched
        unread = barrier.unread(applied, fetched)
        log.warning(
            "deadlines held: inputs not yet read",
            extra={
                "partition": partition,
                "seconds": round(waited, 1),
                "unread": [f"{t}[{p}]" for t, p in unread],
            },
        )
        if not any(source in applied for source in unread):
            # Nothing of them read since the take-over: the consumer, not the stream, is stuck
            # (seen once in 40 restarts after a SIGKILL). Resuming what runs is a no-op.
            self._kick = True

    async def _kick_if_stalled(self) -> None:
        """Resume the consumer's stream partitions, flow and fetcher when a held tick found
        nothing read. Never a changelog partition: outside recovery, its records (the worker's
        own writes, from wherever the client's position stood) would be applied to the table
        again, older values over newer ones; recovery resumes those itself."""
        if not self._kick:
            return
        self._kick = False
        app: Any = self.topology.app
        consumer = app.consumer
        log.error("fetching looks stalled: resuming the consumer")
        changelogs = app.tables.changelog_topics
        consumer.resume_partitions(
            {tp for tp in consumer.assignment() if tp.topic not in changelogs}
        )
        app.flow_control.resume()
        consumer.resume_flow()
        await restart_fetcher(app)
