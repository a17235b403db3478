"""Deadline bookkeeping per partition, and the loop that asks each partition's stream to fire.

The loop never touches tables or emits outputs itself: when a partition's earliest deadline is due
it produces a *tick* (a record naming the instant) to that partition of the internal ticks topic.
The stream that owns the partition fires the due deadlines in stream context, so outputs, table
writes and offsets stay in one (optionally transactional) unit, and the partition's *fired
watermark* — every deadline at or before it has been emitted — is stored once per tick, not once
per deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from processor.sla.deadlines import DeadlineIndex

log = logging.getLogger(__name__)

# A tick that has not come back after this long (lost in a rebalance) is sent again.
TICK_RETRY_SECONDS = 5.0
# The loop re-checks at least this often, so a missed wake-up costs at most this much lateness.
MAX_SLEEP_SECONDS = 1.0
# While the app rebalances or recovers, the loop looks again this often.
PAUSED_POLL_SECONDS = 0.1


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(slots=True)
class PartitionClock:
    """One owned partition: its deadline index and fired watermark (epoch seconds)."""

    index: DeadlineIndex
    fired_up_to: float | None
    tick_sent_at: float | None = None  # monotonic time of the tick in flight


@dataclass(slots=True)
class Deadlines:
    """The owned partitions' clocks; the stream arms and cancels, the loop asks for ticks."""

    partitions: dict[int, PartitionClock] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _next_check: float = 0.0

    def own(self, partition: int, index: DeadlineIndex, fired_up_to: float | None) -> None:
        self.partitions[partition] = PartitionClock(index, fired_up_to)
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

    def due_partitions(self, now: float, monotonic: float) -> list[int]:
        """Partitions with a deadline due and no tick in flight (or one presumed lost)."""
        due = []
        for partition, clock in self.partitions.items():
            earliest = clock.index.peek()
            if earliest is None or earliest > now:
                continue
            sent = clock.tick_sent_at
            if sent is None or monotonic - sent > TICK_RETRY_SECONDS:
                clock.tick_sent_at = monotonic
                due.append(partition)
        return due

    def unsent(self, partition: int) -> None:
        """The tick for `partition` could not be sent: it is not in flight."""
        clock = self.partitions.get(partition)
        if clock is not None:
            clock.tick_sent_at = None

    def earliest(self) -> float | None:
        dues = [c.index.peek() for c in self.partitions.values() if c.tick_sent_at is None]
        return min((d for d in dues if d is not None), default=None)

    async def sleep(self, now: float) -> None:
        earliest = self.earliest()
        delay = (
            MAX_SLEEP_SECONDS
            if earliest is None
            else min(max(earliest - now, 0.0), MAX_SLEEP_SECONDS)
        )
        self._next_check = now + delay
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def wake(self) -> None:
        self._wake.set()


async def tick_loop(
    deadlines: Deadlines,
    send_tick: Callable[[int, float], Awaitable[None]],
    paused: Callable[[], bool],
    clock: Callable[[], float] = time.time,
) -> None:
    """Ask for ticks forever; an error is logged and the loop goes on (an escaped one stops Faust)."""
    while True:
        try:
            await deadlines.sleep(clock())
            if paused():
                # With a deadline already due `sleep` returns at once: poll, do not spin.
                await asyncio.sleep(PAUSED_POLL_SECONDS)
                continue
            now = clock()
            for partition in deadlines.due_partitions(now, time.monotonic()):
                try:
                    await send_tick(partition, now)
                except Exception:
                    deadlines.unsent(partition)  # retry soon, not after TICK_RETRY_SECONDS
                    raise
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deadline loop failed; retrying")
            await asyncio.sleep(0.1)
