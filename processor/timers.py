"""Deadline bookkeeping per partition, and the loop that asks each partition's stream to fire.

The loop never touches tables or emits outputs itself: when a partition's earliest deadline is due
it *decides* a tick at that instant and takes the end offsets of the partition's inputs. Once the
stream has applied them (`processor.sla.firing.Barrier`) the due deadlines fire in stream
context: with a record of the partition the stream handles anyway (`processor.holds`), or,
with nothing of it in hand, with a tick (a record naming the instant) the loop produces to that
partition of the internal ticks topic. Either way the stream that owns the partition fires and
stores the states it advanced, so outputs, table writes and offsets stay in one (optionally
transactional) unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from processor.instants import epoch
from processor.sla.deadlines import DeadlineIndex
from processor.sla.firing import Barrier

log = logging.getLogger(__name__)

# A tick that has not come back after this long (lost in a rebalance) is decided again.
TICK_RETRY_SECONDS = 5.0
# Ticks of one partition sent and not yet back: the next tick's hold (waiting for its inputs)
# overlaps their trip through Kafka. One tick at a time is held: each decision asks the end
# offsets, and on a saturated worker four held ticks were later, not earlier (p99 206 ms against
# 145 ms, bench/results/timers-rule-2026-12-02/).
MAX_TICKS_IN_FLIGHT = 3
# The loop re-checks at least this often, so a missed wake-up costs at most this much lateness.
MAX_SLEEP_SECONDS = 1.0
# While the app rebalances or recovers the loop looks again this often.
PAUSED_POLL_SECONDS = 0.1
# After an error the loop tries again this soon.
RETRY_SECONDS = 0.1
# While a decided tick waits for its inputs (firing.Barrier) the loop looks again this often, and
# whenever the stream has applied a record: a position past transaction markers (firing.Fetched)
# is seen within this much.
BARRIER_POLL_SECONDS = 0.005


async def nap(wake: asyncio.Event, seconds: float) -> None:
    """Wait until `wake` is set, or `seconds` pass."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=seconds)


@dataclass(slots=True)
class PartitionClock:
    """One owned partition: its deadline index, and its ticks held or in flight.

    `token` names this ownership of the partition: a tick carrying another one was decided by an
    earlier owner (or this worker before a crash), on state this owner may not have yet, and is
    ignored. `legacy_mark` is the fired watermark an earlier release stored (codec.LEGACY).
    """

    index: DeadlineIndex
    token: str
    legacy_mark: datetime | None = None
    barrier: Barrier | None = None  # decided, waiting for its inputs
    # (instant, monotonic send time) of each tick sent and not yet back, oldest first
    in_flight: list[tuple[float, float]] = field(default_factory=list)
    last_upto: float = float("-inf")  # the instant of the last tick decided

    def hold(self, barrier: Barrier) -> None:
        self.barrier = barrier
        self.last_upto = epoch(barrier.upto)

    def sent(self, upto: float, monotonic: float) -> tuple[float, float]:
        entry = (upto, monotonic)
        self.in_flight.append(entry)
        return entry

    def came_back(self, upto: float) -> None:
        """A tick of this ownership for instant `upto` arrived: it and any before it are back
        (one read again after a seek, or after the rest were presumed lost, changes nothing)."""
        in_flight = self.in_flight
        while in_flight and in_flight[0][0] <= upto:
            del in_flight[0]

    def may_decide(self) -> bool:
        return self.barrier is None and len(self.in_flight) < MAX_TICKS_IN_FLIGHT

    def next_due(self) -> float | None:
        """When a tick is next worth deciding: the earliest deadline after the instant of the
        ticks outstanding (they fire everything due up to theirs)."""
        if self.barrier is not None or self.in_flight:
            return self.index.peek_after(self.last_upto)
        return self.index.peek()

    def forget_lost(self, monotonic: float) -> None:
        """Ticks in flight for longer than TICK_RETRY_SECONDS are presumed lost."""
        if self.in_flight and monotonic - self.in_flight[0][1] > TICK_RETRY_SECONDS:
            self.in_flight.clear()


@dataclass(slots=True)
class Deadlines:
    """The owned partitions' clocks; the stream arms and cancels, the loop decides ticks."""

    partitions: dict[int, PartitionClock] = field(default_factory=dict)
    nap: Callable[[asyncio.Event, float], Awaitable[None]] = nap  # how `sleep` waits
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _next_check: float = 0.0
    beat: float | None = None  # the loop's last round (monotonic): liveness

    def own(self, partition: int, clock: PartitionClock) -> None:
        self.partitions[partition] = clock
        self._wake.set()

    def release(self, partition: int) -> None:
        self.partitions.pop(partition, None)

    def arm(self, partition: int, key: str, due: datetime | None) -> None:
        clock = self.partitions.get(partition)
        if clock is None:
            return
        if due is None:
            clock.index.cancel(key)
            return
        seconds = epoch(due)
        clock.index.arm(key, seconds)
        if seconds < self._next_check:
            self._wake.set()

    def pending(self) -> int:
        return sum(len(clock.index) for clock in self.partitions.values())

    def held(self) -> list[int]:
        """Partitions whose decided tick waits for its inputs."""
        return [p for p, clock in self.partitions.items() if clock.barrier is not None]

    def oldest_hold(self, monotonic: float) -> float:
        """Seconds the longest-waiting decided tick has waited (0 when none waits)."""
        started = [c.barrier.decided_at for c in self.partitions.values() if c.barrier]
        return max(monotonic - min(started), 0.0) if started else 0.0

    def due_partitions(self, now: float, monotonic: float) -> list[int]:
        """Partitions with a deadline due and room for another tick (or whose ticks are lost).

        While ticks are outstanding, the next one is decided for a deadline later than their
        instant: they fire everything due up to it.
        """
        due = []
        for partition, clock in self.partitions.items():
            clock.forget_lost(monotonic)
            if not clock.may_decide():
                continue
            next_due = clock.next_due()
            if next_due is not None and next_due <= now:
                due.append(partition)
        return due

    def earliest(self) -> float | None:
        dues = [c.next_due() for c in self.partitions.values() if c.may_decide()]
        return min((d for d in dues if d is not None), default=None)

    async def sleep(self, now: float) -> None:
        earliest = self.earliest()
        longest = BARRIER_POLL_SECONDS if self.held() else MAX_SLEEP_SECONDS
        delay = longest if earliest is None else min(max(earliest - now, 0.0), longest)
        self._next_check = now + delay
        self._wake.clear()
        await self.nap(self._wake, delay)

    def wake(self) -> None:
        self._wake.set()


class Ticker(Protocol):
    """What the loop asks of the stream: decide ticks (taking end offsets), send the ready ones."""

    async def decide_ticks(self, partitions: list[int], now: float) -> None: ...

    async def send_ready_ticks(self) -> None: ...


async def tick_loop(
    deadlines: Deadlines,
    ticker: Ticker,
    paused: Callable[[], bool],
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Decide ticks and send them once their inputs are read, forever; an error is logged and the
    loop goes on (an escaped one stops Faust)."""
    while True:
        deadlines.beat = monotonic()
        try:
            await deadlines.sleep(clock())
            if paused():
                # With a deadline already due `sleep` returns at once: poll, do not spin.
                await sleep(PAUSED_POLL_SECONDS)
                continue
            now = clock()
            due = deadlines.due_partitions(now, monotonic())
            if due:
                await ticker.decide_ticks(due, now)
            if deadlines.held():
                await ticker.send_ready_ticks()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deadline loop failed; retrying")
            await sleep(RETRY_SECONDS)
