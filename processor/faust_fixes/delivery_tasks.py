"""Faust's fetcher makes four asyncio tasks to hand over each record (a cost, not a loss)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust.transport.consumer as faust_consumer
from mode.services import WaitResults

from processor.faust_fixes.stepping import first_step

# The code of `asyncio.Event.wait`: the fetcher's second awaitable is `suspend_flow.wait()`.
_EVENT_WAIT = asyncio.Event.wait.__code__


def deliver_without_tasks(consumer_class: Any = faust_consumer.Consumer) -> None:
    """Work round a per-record cost in faust-streaming 0.15: tasks for a delivery that never
    waits.

    `Consumer._drain_messages` hands every fetched record to the agents' queues with
    `await self.wait_first(callback(message), self.suspend_flow.wait())`, so that a delivery
    blocked on a full queue gives way when flow is suspended (a rebalance). mode's `wait_first`
    wraps each awaitable, and the service's stopped and crashed events, in a task and waits
    for the first: four tasks and an `asyncio.wait` per record, about 21 us, measured here
    against 0.06 us for the delivery itself. That is the cost of every record the worker reads,
    the changelog records of a recovery included.

    Here the delivery is started first: when it completes without waiting (a queue with room,
    the usual case) its result is the call's, as if it had won, and no task is made. When it
    does wait, it goes on inside Faust's own `wait_first`, resumed where it stopped, so a
    suspension still interrupts it as before. Other calls of `wait_first` are left alone, and
    so is this one whenever the service is already stopped or crashed.
    """
    if getattr(consumer_class.wait_first, "_without_tasks", False):
        return
    wait_first = consumer_class.wait_first

    async def wait_first_delivering(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if not _a_delivery(coros, timeout) or self._stopped.is_set() or self._crashed.is_set():
            return await wait_first(self, *coros, timeout=timeout)
        delivery, suspended = coros
        try:
            done, value = first_step(delivery)
        except BaseException:
            suspended.close()  # never started: nothing to cancel
            raise
        if done:
            suspended.close()
            return WaitResults([delivery], [value], False)
        return await wait_first(self, value, suspended, timeout=timeout)

    wait_first_delivering._without_tasks = True  # type: ignore[attr-defined]
    consumer_class.wait_first = wait_first_delivering


def _a_delivery(coros: tuple[Any, ...], timeout: Any) -> bool:
    """The fetcher's call: a coroutine, then an event's `wait()`, without a timeout."""
    return (
        timeout is None
        and len(coros) == 2
        and asyncio.iscoroutine(coros[0])
        and getattr(coros[1], "cr_code", None) is _EVENT_WAIT
    )
