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
# While the app rebalances or recovers, or a partition reads its backlog, the loop looks again
# this often.
PAUSED_POLL_SECONDS = 0.1
# A source partition whose fetch position passed its backlog is read once no record of the
# partition has been processed for this long (a commit marker or an aborted transaction at the
# end leaves no last record to see).
BACKLOG_QUIET_SECONDS = 0.3


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(slots=True)
class Backlog:
    """What a newly owned partition must process before its deadlines fire.

    After a crash or a rebalance the partition's inputs may hold events its state has not seen
    yet (a resolve, a lowered severity): firing first would emit what those events cancel.
    `ends` are the source partitions' end offsets when the partition was taken over; `seen` the
    offset after the last record processed from each.
    """

    ends: dict[str, int]
    started: float  # monotonic
    seen: dict[str, int] = field(default_factory=dict)
    last_seen: float = 0.0

    def note(self, topic: str, offset: int, monotonic: float) -> None:
        self.seen[topic] = offset + 1
        self.last_seen = monotonic

    def unread(self) -> list[str]:
        """Source topics whose last record before the end has not been processed (yet)."""
        return [t for t, end in self.ends.items() if self.seen.get(t, 0) < end]

    def read(self, positions: dict[str, int | None], monotonic: float) -> bool:
        """Whether everything is processed, given the fetch positions of the `unread` topics."""
        quiet = monotonic - max(self.last_seen, self.started) >= BACKLOG_QUIET_SECONDS
        return all(quiet and (positions.get(t) or 0) >= self.ends[t] for t in self.unread())


@dataclass(slots=True)
class PartitionClock:
    """One owned partition: its deadline index and fired watermark (epoch seconds).

    A partition is *held* (no ticks) from its take-over until its backlog is processed.
    """

    index: DeadlineIndex
    fired_up_to: float | None
    tick_sent_at: float | None = None  # monotonic time of the tick in flight
    held: bool = False
    backlog: Backlog | None = None


@dataclass(slots=True)
class Deadlines:
    """The owned partitions' clocks; the stream arms and cancels, the loop asks for ticks."""

    partitions: dict[int, PartitionClock] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _next_check: float = 0.0

    def own(
        self, partition: int, index: DeadlineIndex, fired_up_to: float | None, *, held: bool = False
    ) -> None:
        self.partitions[partition] = PartitionClock(index, fired_up_to, held=held)
        self._wake.set()

    def held(self) -> list[int]:
        return [p for p, clock in self.partitions.items() if clock.held]

    def note(self, partition: int, topic: str, offset: int) -> None:
        """A record of a source partition was processed (it counts towards a held backlog)."""
        clock = self.partitions.get(partition)
        if clock is not None and clock.backlog is not None:
            clock.backlog.note(topic, offset, time.monotonic())

    def unhold(self, partition: int) -> None:
        clock = self.partitions.get(partition)
        if clock is not None:
            clock.held = False
            clock.backlog = None
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
            if clock.held:
                continue
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
        dues = [
            c.index.peek()
            for c in self.partitions.values()
            if c.tick_sent_at is None and not c.held
        ]
        return min((d for d in dues if d is not None), default=None)

    async def sleep(self, now: float) -> None:
        earliest = self.earliest()
        longest = PAUSED_POLL_SECONDS if self.held() else MAX_SLEEP_SECONDS
        delay = longest if earliest is None else min(max(earliest - now, 0.0), longest)
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
    catch_up: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Ask for ticks forever; an error is logged and the loop goes on (an escaped one stops Faust).

    `catch_up` releases held partitions whose backlog has been processed.
    """
    while True:
        try:
            await deadlines.sleep(clock())
            if paused():
                # With a deadline already due `sleep` returns at once: poll, do not spin.
                await asyncio.sleep(PAUSED_POLL_SECONDS)
                continue
            if catch_up is not None and deadlines.held():
                await catch_up()
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
