"""`Deadlines` and `tick_loop` on hand-made clocks: which partitions get a tick, when, and again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from processor.sla.deadlines import DeadlineIndex
from processor.sla.firing import Barrier
from processor.timers import (
    MAX_SLEEP_SECONDS,
    MAX_TICKS_IN_FLIGHT,
    PAUSED_POLL_SECONDS,
    RETRY_SECONDS,
    TICK_RETRY_SECONDS,
    Deadlines,
    PartitionClock,
    nap,
    tick_loop,
)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def owned(*partitions: int) -> Deadlines:
    deadlines = Deadlines()
    for partition in partitions:
        deadlines.own(partition, PartitionClock(DeadlineIndex(), token=f"o{partition}"))
    return deadlines


def test_only_partitions_with_a_due_deadline_get_a_tick() -> None:
    d = owned(0, 1, 2)
    d.arm(0, "t:a", at(100.0))
    d.arm(1, "t:b", at(200.0))
    assert d.due_partitions(now=99.9, monotonic=0.0) == []
    assert d.due_partitions(now=100.0, monotonic=0.0) == [0]  # due at the instant itself
    held(d, 0, upto=100.0)
    assert d.due_partitions(now=250.0, monotonic=0.1) == [1]  # 0's tick waits for its inputs


def held(d: Deadlines, partition: int, upto: float = 0.0) -> None:
    """What the stream does when it decides a tick: it waits for the tick's inputs."""
    d.partitions[partition].hold(Barrier(at(upto), {}, ("rekeyed", partition), 0, 0.0))


def sent(d: Deadlines, partition: int, monotonic: float) -> None:
    """What the stream does once a decided tick's inputs are read: it sends the tick."""
    clock = d.partitions[partition]
    assert clock.barrier is not None
    clock.sent(clock.barrier.upto.timestamp(), monotonic)
    clock.barrier = None


def test_the_next_tick_is_decided_while_others_are_in_flight_up_to_a_bound() -> None:
    d = owned(0)
    for n in range(MAX_TICKS_IN_FLIGHT + 2):
        d.arm(0, f"t:{n}", at(100.0 + n))  # one deadline a second
    for n in range(MAX_TICKS_IN_FLIGHT):
        assert d.due_partitions(100.0 + n, monotonic=10.0) == [0]
        held(d, 0, upto=100.0 + n)
        assert d.due_partitions(100.5 + n, monotonic=10.0) == []  # held: not another
        sent(d, 0, monotonic=10.0)
        assert d.due_partitions(100.5 + n, monotonic=10.0) == []  # nothing new due since
    assert d.due_partitions(110.0, monotonic=10.0) == []  # the bound
    d.partitions[0].came_back(100.0)  # what the stream does when the oldest tick arrives
    assert d.due_partitions(110.0, monotonic=10.0) == [0]  # for t:4, due after all of theirs


def test_while_ticks_are_outstanding_only_a_later_deadline_makes_another() -> None:
    d = owned(0)
    d.arm(0, "t:a", at(100.0))
    held(d, 0, upto=100.0)
    sent(d, 0, monotonic=1.0)
    assert d.due_partitions(500.0, monotonic=1.1) == []  # t:a is the tick's: no second tick
    assert d.earliest() is None
    d.arm(0, "t:b", at(100.0))  # due at the same instant: the tick in flight fires it too
    assert d.due_partitions(500.0, monotonic=1.1) == []
    d.arm(0, "t:c", at(100.25))
    assert d.earliest() == 100.25
    assert d.due_partitions(100.2, monotonic=1.1) == []
    assert d.due_partitions(100.25, monotonic=1.1) == [0]


def test_a_tick_back_clears_itself_and_those_before_it_only() -> None:
    d = owned(0)
    d.arm(0, "t:a", at(100.0))
    for upto in (100.0, 101.0, 102.0):
        held(d, 0, upto=upto)
        sent(d, 0, monotonic=1.0)
    clock = d.partitions[0]
    clock.came_back(101.0)  # 100's was lost, or arrived before a seek back
    assert [upto for upto, _ in clock.in_flight] == [102.0]
    clock.came_back(100.0)  # read again after a seek: changes nothing
    assert [upto for upto, _ in clock.in_flight] == [102.0]


def test_ticks_in_flight_too_long_are_presumed_lost() -> None:
    d = owned(0)
    d.arm(0, "t:a", at(100.0))
    for n in range(MAX_TICKS_IN_FLIGHT):
        held(d, 0, upto=100.0 + n)
        sent(d, 0, monotonic=10.0)
    assert d.due_partitions(101.0, monotonic=10.0 + TICK_RETRY_SECONDS) == []
    assert d.due_partitions(102.0, monotonic=10.1 + TICK_RETRY_SECONDS) == [0]  # decided again
    assert d.partitions[0].in_flight == []


def test_arm_moves_and_none_cancels() -> None:
    d = owned(0)
    d.arm(0, "t:a", at(100.0))
    d.arm(0, "t:a", at(300.0))
    assert d.due_partitions(200.0, monotonic=0.0) == []
    d.arm(0, "t:a", None)
    assert d.pending() == 0
    assert d.due_partitions(400.0, monotonic=0.0) == []


def test_release_forgets_a_partition_and_ignores_its_arms() -> None:
    d = owned(0, 1)
    d.arm(0, "t:a", at(100.0))
    d.arm(1, "t:b", at(100.0))
    d.release(1)
    d.release(7)  # never owned: nothing happens
    d.arm(1, "t:c", at(50.0))  # a late arm for a revoked partition is dropped
    assert (d.pending(), sorted(d.partitions)) == (1, [0])
    assert d.due_partitions(100.0, monotonic=0.0) == [0]


def test_earliest_skips_partitions_that_may_not_decide_a_tick() -> None:
    d = owned(0, 1)
    d.arm(0, "t:a", at(100.0))
    d.arm(1, "t:b", at(150.0))
    assert d.earliest() == 100.0
    assert d.due_partitions(120.0, monotonic=0.0) == [0]
    held(d, 0, upto=120.0)
    assert d.earliest() == 150.0
    sent(d, 0, monotonic=0.0)
    assert d.earliest() == 150.0  # 0's deadline is its tick's
    d.partitions[0].came_back(120.0)
    assert d.earliest() == 100.0


def test_own_restores_a_rebuilt_index() -> None:
    d = Deadlines()
    index = DeadlineIndex.from_items([("t:a", 10.0), ("m:b", 5.0)])
    d.own(3, PartitionClock(index, token="x", legacy_mark=at(4.0)))
    assert (d.pending(), d.partitions[3].legacy_mark) == (2, at(4.0))
    assert d.due_partitions(5.0, monotonic=0.0) == [3]


class Naps:
    """`Deadlines.nap` on a hand-made clock: records each wait asked for, and ends it when woken
    (or at once, with `instant`, as if every wait had timed out)."""

    def __init__(self, instant: bool = False) -> None:
        self.asked: list[float] = []
        self.instant = instant

    async def __call__(self, wake: asyncio.Event, seconds: float) -> None:
        self.asked.append(seconds)
        if self.instant or seconds == 0:
            await asyncio.sleep(0)
            return
        await wake.wait()


def owned_with(naps: Naps, *partitions: int) -> Deadlines:
    deadlines = owned(*partitions)
    deadlines.nap = naps
    return deadlines


async def test_sleep_is_capped_and_wakes_for_an_earlier_deadline() -> None:
    naps = Naps()
    d = owned_with(naps, 0)
    d.arm(0, "t:a", at(1_060.0))
    sleeper = asyncio.create_task(d.sleep(1_000.0))
    await _until(lambda: naps.asked == [MAX_SLEEP_SECONDS])  # a minute away: capped
    d.arm(0, "t:b", at(1_000.1))  # earlier than the next check: wakes the loop
    await _until(sleeper.done)
    d._wake.clear()
    d.arm(0, "t:c", at(1_002.0))  # later than the next check (1_001.0): no wake-up needed
    assert not d._wake.is_set()


async def test_sleep_is_capped_and_wake_ends_it() -> None:
    naps = Naps()
    d = owned_with(naps, 0)
    sleeper = asyncio.create_task(d.sleep(1_000.0))  # nothing armed: one MAX_SLEEP_SECONDS nap
    await _until(lambda: naps.asked == [MAX_SLEEP_SECONDS])
    assert not sleeper.done()
    d.wake()
    await _until(sleeper.done)


async def test_the_nap_ends_on_its_timeout_or_on_a_wake() -> None:
    wake = asyncio.Event()
    await nap(wake, 0.001)  # returns (no TimeoutError) when the time is up
    wake.set()
    await asyncio.wait_for(nap(wake, 3_600.0), timeout=5.0)  # and at once when woken


class FakeClock:
    """Wall-clock seconds that the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Ticks:
    """A fake stream: decides a tick (a barrier on nothing), sends it; fails on demand."""

    def __init__(self, deadlines: Deadlines, clock: FakeClock | None = None) -> None:
        self.deadlines = deadlines
        self.monotonic = clock or FakeClock(0.0)
        self.sent: list[tuple[int, float]] = []
        self.failures = 0
        self.inputs_read = True

    async def decide_ticks(self, partitions: list[int], now: float) -> None:
        for partition in partitions:
            barrier = Barrier(at(now), {}, ("rekeyed", partition), 0, self.monotonic())
            self.deadlines.partitions[partition].hold(barrier)

    async def send_ready_ticks(self) -> None:
        if not self.inputs_read:
            return
        for partition in self.deadlines.held():
            clock = self.deadlines.partitions[partition]
            barrier = clock.barrier
            assert barrier is not None
            clock.barrier = None
            if self.failures:
                self.failures -= 1
                raise RuntimeError("broker hiccup")
            self.sent.append((partition, barrier.upto.timestamp()))
            clock.sent(barrier.upto.timestamp(), self.monotonic())


class Pause:
    """A fake `paused()` that counts how often the loop asked."""

    def __init__(self, paused: bool) -> None:
        self.paused = paused
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.paused


class Sleeps:
    """`asyncio.sleep` for the loop, on a hand-made clock: records each pause, only yields."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


def a_loop(d: Deadlines, ticks: Ticks, clock: FakeClock, sleeps: Sleeps,
           paused: Callable[[], bool] = lambda: False) -> asyncio.Task[None]:  # fmt: skip
    d.nap = Naps(instant=True)
    monotonic = lambda: clock.now  # noqa: E731  # the loop's monotonic time moves with it
    return asyncio.create_task(
        tick_loop(d, ticks, paused=paused, clock=clock, monotonic=monotonic, sleep=sleeps)
    )


async def test_tick_loop_waits_out_a_pause_without_spinning() -> None:
    clock, d, pause, sleeps = FakeClock(1_000.0), owned(0, 1), Pause(True), Sleeps()
    ticks = Ticks(d, clock)
    d.arm(1, "t:a", at(999.0))  # already due: `sleep` returns at once
    loop = a_loop(d, ticks, clock, sleeps, paused=pause)
    try:
        await _until(lambda: pause.asked >= 20)
        assert ticks.sent == []
        # Every time it found the app paused it slept a poll interval before asking again.
        assert sleeps.asked[: pause.asked - 1] == [PAUSED_POLL_SECONDS] * (pause.asked - 1)
        pause.paused = False
        await _until(lambda: bool(ticks.sent))
        assert ticks.sent == [(1, 1_000.0)]
    finally:
        await _stop(loop)


async def test_tick_loop_retries_a_failed_send_at_once() -> None:
    clock, d, sleeps = FakeClock(1_000.0), owned(0), Sleeps()
    ticks = Ticks(d, clock)
    ticks.failures = 1  # logged; the partition is not left "in flight" for TICK_RETRY_SECONDS
    d.arm(0, "t:a", at(1_000.0))
    loop = a_loop(d, ticks, clock, sleeps)
    try:
        await _until(lambda: bool(ticks.sent))
        assert sleeps.asked == [RETRY_SECONDS]  # one short retry, no TICK_RETRY_SECONDS wait
        assert ticks.sent == [(0, 1_000.0)]  # the decided tick waited and went out
        await _spin(100)
        assert ticks.sent == [(0, 1_000.0)]  # in flight now: not sent again
        clock.now = 1_010.0
        d.partitions[0].came_back(1_000.0)  # the tick came back; the deadline is still armed
        d.wake()
        await _until(lambda: len(ticks.sent) == 2)
        assert ticks.sent[1] == (0, 1_010.0)
    finally:
        await _stop(loop)


async def _stop(loop: asyncio.Task[None]) -> None:
    assert not loop.done(), "the loop ended by itself"
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop


async def _spin(steps: int) -> None:
    """Let the event loop run `steps` rounds (the loop under test never waits on a real clock)."""
    for _ in range(steps):
        await asyncio.sleep(0)


async def _until(condition: Callable[[], bool], steps: int = 10_000) -> None:
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition not met in {steps} rounds of the event loop")


# -- decided ticks wait for their inputs -------------------------------------------------------


async def test_a_decided_tick_waits_until_its_inputs_are_read() -> None:
    clock, d, sleeps = FakeClock(1_000.0), owned(0, 1), Sleeps()
    ticks = Ticks(d, clock)
    ticks.inputs_read = False
    d.arm(0, "t:a", at(1_000.0))
    loop = a_loop(d, ticks, clock, sleeps)
    try:
        await _until(lambda: d.held() == [0])
        clock.now = 1_005.0
        await _spin(100)
        assert ticks.sent == []
        barrier = d.partitions[0].barrier
        assert barrier is not None
        assert barrier.upto.timestamp() == 1_000.0
        assert d.due_partitions(1_005.0, clock.now) == []  # decided once, not again
        assert d.oldest_hold(clock.now) == 5.0
        ticks.inputs_read = True
        await _until(lambda: bool(ticks.sent))
        assert ticks.sent[0] == (0, 1_000.0)  # the instant it was decided at, not when sent
        # Its deadline stays armed until the tick comes back, and is the tick's: no other.
        await _spin(100)
        assert ticks.sent == [(0, 1_000.0)]
        assert d.held() == []
        assert d.oldest_hold(clock.now) == 0.0
    finally:
        await _stop(loop)
