"""Changelog replay takes queued records in place and asks for the rest without a `Counter`
(`faust_fixes.replay_costs`)."""

from __future__ import annotations

import asyncio
import types
from collections import Counter
from typing import Any

import faust.tables.recovery
import pytest

from processor.faust_fixes.replay_costs import _need_recovery, cheapen_changelog_replay

TPS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("highwaters", "offsets"),
    [
        ({}, {}),
        ({"a": 10, "b": 5}, {"a": 10, "b": 5}),  # every partition replayed
        ({"a": 10, "b": 5}, {"a": 10, "b": 4}),  # one change left
        ({"a": 10}, {}),  # nothing replayed yet
        ({"a": None, "b": 3}, {"a": 1, "b": 7}),  # no high watermark; read past it
        ({"a": 0, "b": -1}, {"a": 0}),
    ],
)
def test_need_recovery_agrees_with_faust(
    highwaters: dict[str, Any], offsets: dict[str, int]
) -> None:
    recovery = types.SimpleNamespace(
        active_highwaters=Counter(highwaters), active_offsets=Counter(offsets)
    )
    # Faust's own answer, from its own (unpatched) count of what is left.
    faust_answer = any(
        v > 0 for v in faust.tables.recovery.Recovery.active_remaining(recovery).values()
    )
    assert _need_recovery(recovery) is faust_answer


class _Recorder:
    """The `asyncio` below the shim: records what reaches `wait_for`."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []
        self.iscoroutine = asyncio.iscoroutine

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        self.waits.append(timeout)
        return await asyncio.wait_for(awaitable, timeout=timeout)


def a_recovery_module() -> tuple[Any, _Recorder]:
    recorder = _Recorder()
    module = types.SimpleNamespace(
        asyncio=recorder, Recovery=type("Recovery", (), {"need_recovery": lambda self: True})
    )
    cheapen_changelog_replay(module)
    cheapen_changelog_replay(module)  # idempotent: one shim, not two
    return module, recorder


async def test_a_queued_record_is_taken_without_wait_for() -> None:
    module, recorder = a_recovery_module()
    queue: asyncio.Queue[str] = asyncio.Queue()
    queue.put_nowait("record")
    assert await module.asyncio.wait_for(queue.get(), timeout=5.0) == "record"
    assert recorder.waits == []
    assert module.Recovery.need_recovery is _need_recovery


async def test_the_next_record_is_waited_for_with_the_timeout() -> None:
    module, recorder = a_recovery_module()
    queue: asyncio.Queue[str] = asyncio.Queue()

    async def put_later() -> None:
        await asyncio.sleep(0.02)
        queue.put_nowait("later")

    taken, _ = await asyncio.gather(module.asyncio.wait_for(queue.get(), timeout=5.0), put_later())
    assert taken == "later"
    assert recorder.waits == [5.0]


async def test_an_idle_queue_times_out_and_keeps_no_waiter() -> None:
    module, recorder = a_recovery_module()
    queue: asyncio.Queue[str] = asyncio.Queue()
    with pytest.raises(TimeoutError):
        await module.asyncio.wait_for(queue.get(), timeout=0.01)
    queue.put_nowait("next")
    assert queue.get_nowait() == "next"  # the timed-out take left nothing waiting for it
    assert recorder.waits == [0.01]


def test_the_shim_passes_the_rest_of_asyncio_through() -> None:
    module = types.SimpleNamespace(asyncio=asyncio, Recovery=type("Recovery", (), {}))
    module.Recovery.need_recovery = lambda self: True
    cheapen_changelog_replay(module)
    assert module.asyncio.TimeoutError is asyncio.TimeoutError
    assert module.asyncio.ensure_future is asyncio.ensure_future


def test_faust_still_counts_what_is_left_per_record() -> None:
    """If Faust's replay changes, the fix must be revisited."""
    import inspect

    source = inspect.getsource(faust.tables.recovery.Recovery)
    assert "return any(v > 0 for v in self.active_remaining().values())" in source
    assert "if self.in_recovery and not self.need_recovery():" in source
