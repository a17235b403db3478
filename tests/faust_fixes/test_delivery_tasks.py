"""The fetcher's delivery of a record makes no task unless it has to wait
(`faust_fixes.delivery_tasks`)."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import faust.transport.consumer
import pytest
from mode import Service

from processor.faust_fixes.delivery_tasks import deliver_without_tasks


def a_consumer() -> tuple[Any, list[tuple[Any, ...]]]:
    """A mode service with the fix, and the calls that reached mode's own `wait_first`."""
    calls: list[tuple[Any, ...]] = []

    class Recorded(Service):
        async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
            calls.append(coros)
            return await Service.wait_first(self, *coros, timeout=timeout)

    consumer_class = type("Consumer", (Recorded,), {})
    deliver_without_tasks(consumer_class)
    deliver_without_tasks(consumer_class)  # idempotent
    return consumer_class(), calls


async def test_a_delivery_that_does_not_wait_makes_no_task() -> None:
    consumer, calls = a_consumer()
    suspend_flow = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    suspended = suspend_flow.wait()
    result = await consumer.wait_first(queue.put(7), suspended)
    assert calls == []  # mode's wait_first, and its tasks, never ran
    assert len(result.done) == 1
    assert result.results == [None]
    assert not result.stopped
    assert queue.get_nowait() == 7
    assert inspect.getcoroutinestate(suspended) == inspect.CORO_CLOSED  # no "never awaited"


async def test_a_delivery_that_waits_is_finished_by_mode_once_there_is_room() -> None:
    consumer, calls = a_consumer()
    suspend_flow = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(1)  # full: the delivery waits

    async def consume_later() -> None:
        await asyncio.sleep(0.02)
        assert queue.get_nowait() == 1

    delivered, _ = await asyncio.gather(
        consumer.wait_first(queue.put(2), suspend_flow.wait()), consume_later()
    )
    assert len(calls) == 1
    assert not delivered.stopped
    assert queue.get_nowait() == 2  # the record put after the wait, exactly once
    assert queue.empty()


async def test_a_delivery_that_waits_gives_way_to_a_suspension_as_before() -> None:
    consumer, _ = a_consumer()
    suspend_flow = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
    queue.put_nowait(1)
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await queue.put(2)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def suspend_later() -> None:
        await asyncio.sleep(0.02)
        suspend_flow.set()

    waited, _ = await asyncio.gather(
        consumer.wait_first(deliver(), suspend_flow.wait()), suspend_later()
    )
    await asyncio.sleep(0)  # the losing delivery's cancellation runs
    assert not waited.stopped
    assert len(waited.done) == 1
    assert seen == ["cancelled"]  # the delivery saw it, as under mode's own wait_first
    assert queue.qsize() == 1  # and put nothing


async def test_a_delivery_that_fails_raises_and_leaves_no_coroutine_behind() -> None:
    consumer, calls = a_consumer()
    suspended = asyncio.Event().wait()

    async def failing() -> None:
        raise ValueError("bad record")

    with pytest.raises(ValueError, match="bad record"):
        await consumer.wait_first(failing(), suspended)
    assert calls == []
    assert inspect.getcoroutinestate(suspended) == inspect.CORO_CLOSED


async def test_other_waits_go_to_mode_unchanged() -> None:
    consumer, calls = a_consumer()
    event = asyncio.Event()
    event.set()

    async def value() -> int:
        return 3

    await consumer.wait_first(value(), event.wait(), timeout=1.0)  # with a timeout
    await consumer.wait_first(value(), asyncio.sleep(0))  # not an event's wait
    await consumer.wait_first(event.wait())  # one awaitable
    assert len(calls) == 3
    await consumer.stop()  # a stopped service: mode answers "stopped"
    stopped = await consumer.wait_first(value(), asyncio.Event().wait())
    assert len(calls) == 4
    assert stopped.stopped


def test_faust_still_delivers_through_wait_first() -> None:
    """If Faust's fetcher changes, the fix must be revisited (it keys on this call's shape)."""
    source = inspect.getsource(faust.transport.consumer.Consumer._drain_messages)
    flat = re.sub(r"\s+", "", source)
    assert "awaitself.wait_first(callback(message),self.suspend_flow.wait())" in flat
