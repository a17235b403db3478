"""A changelog recovery without progress is sought again; one that moves is left alone
(`faust_fixes.recovery_stall`)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections import Counter
from typing import Any

import faust.tables.recovery
import faust.transport.consumer
import faust.transport.drivers.aiokafka
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from processor.faust_fixes.recovery_stall import STALL_SECONDS, lagging, watch_recovery
from processor.metrics import Metrics

A, B, C = TP("t-changelog", 0), TP("t-changelog", 1), TP("t-changelog", 2)


def test_lagging_names_the_partitions_left_and_where_to_read_them_from() -> None:
    highwaters = {A: 6, B: 1, C: -1}
    assert lagging(highwaters, {A: -1, B: 1, C: -1}) == {A: 0}  # none applied: the beginning
    assert lagging(highwaters, {A: 3, B: 0, C: -1}) == {A: 3, B: 0}  # the last applied again
    assert lagging(highwaters, {A: 6, B: 1, C: -1}) == {}
    assert lagging({A: None, B: 4}, {A: 2, B: None}) == {}  # unknown: nothing to say


class _Recovery:
    def __init__(self) -> None:
        self.in_recovery = True
        self.active_highwaters: dict[TP, int] = {A: 6, B: 1}
        self.active_offsets: Counter[TP] = Counter({A: -1, B: -1})


class _Consumer:
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls
        self.flow_active = True
        self._active_partitions = {A}
        self._paused_partitions = {B}
        self._read_offset: dict[TP, int] = {}

    async def seek_wait(self, positions: dict[TP, int]) -> None:
        self.calls.append(("seek", positions))

    def resume_partitions(self, tps: set[TP]) -> None:
        self.calls.append(("resume", tps))

    def resume_flow(self) -> None:
        self.calls.append(("flow",))


class _App:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.consumer = _Consumer(self.calls)
        self.tables = type("Tables", (), {})()
        self.tables.recovery = _Recovery()
        self.tables.changelog_queue = asyncio.Queue()
        self.consumer_generation_id = 2
        calls = self.calls

        class FlowControl:
            def resume(self) -> None:
                calls.append(("queues",))

            def is_active(self) -> bool:
                return True

        class Fetcher:
            async def maybe_start(self) -> None:
                calls.append(("fetcher",))

        self.flow_control = FlowControl()
        self._fetcher = Fetcher()


async def _watch(app: _App, checks: int, step: Any = None) -> list[int]:
    """Run the watch for `checks` checks, one clock second apart; `step(n)` runs before the nth."""
    stalls: list[int] = []
    ticks = iter(range(10_000))
    now = [0.0]

    def clock() -> float:
        return now[0]

    task = asyncio.ensure_future(
        watch_recovery(app, lambda: stalls.append(int(now[0])), after=3.0, every=0, clock=clock)
    )
    for _ in range(checks):
        n = next(ticks)
        if step is not None:
            step(n)
        now[0] = float(n)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return stalls


async def test_a_recovery_without_progress_is_sought_again_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _App()
    with caplog.at_level(logging.WARNING, logger="processor.faust_fixes.recovery_stall"):
        stalls = await _watch(app, 12)
    assert stalls, "a recovery stuck for longer than `after` was not noticed"
    assert all(
        later - earlier >= 3 for earlier, later in itertools.pairwise(stalls)
    )  # not per check
    assert app.calls[:4] == [("seek", {A: 0, B: 0}), ("resume", {A, B}), ("queues",), ("flow",)]
    assert app.calls[4] == ("fetcher",)
    [record, *_] = [r for r in caplog.records if r.getMessage().startswith("recovery stalled")]
    assert record.left == {"t-changelog[0]": [-1, 6], "t-changelog[1]": [-1, 1]}  # type: ignore[attr-defined]
    assert record.paused == ["t-changelog[1]"]  # type: ignore[attr-defined]
    assert record.active == ["t-changelog[0]"]  # type: ignore[attr-defined]


async def test_a_recovery_that_moves_is_left_alone() -> None:
    app = _App()

    def read_one(n: int) -> None:
        app.tables.recovery.active_offsets[A] = n - 1  # one more record each second

    assert await _watch(app, 7, read_one) == []
    assert app.calls == []


async def test_nothing_is_done_outside_recovery_or_once_caught_up() -> None:
    app = _App()
    app.tables.recovery.in_recovery = False
    assert await _watch(app, 8) == []
    app = _App()
    app.tables.recovery.active_offsets[A], app.tables.recovery.active_offsets[B] = 6, 1
    assert await _watch(app, 8) == []
    assert app.calls == []


def test_faust_still_reads_what_the_watch_looks_at() -> None:
    """The watch reads recovery's offsets and the consumer's sets, and seeks as recovery does."""
    recovery = inspect.getsource(faust.tables.recovery.Recovery)
    for name in ("self.active_highwaters", "self.active_offsets", "self.in_recovery = True"):
        assert name in recovery
    assert "await consumer.seek_wait(new_offsets)" in recovery
    consumer = inspect.getsource(faust.transport.consumer.Consumer)
    for name in ("_active_partitions", "_paused_partitions", "_read_offset", "def resume_flow"):
        assert name in consumer
    assert hasattr(faust.transport.drivers.aiokafka.Consumer, "seek_wait")


def test_the_stall_metric_names_the_watch_threshold() -> None:
    help_text = Metrics(CollectorRegistry()).recovery_stalls._documentation
    assert f"for {STALL_SECONDS:g} s with records left" in help_text
