"""Recovery pays a task and a count of every partition's remaining changes per changelog record
(a cost, not a loss)."""

from __future__ import annotations

from typing import Any

import faust.tables.recovery as faust_recovery

from processor.faust_fixes.stepping import first_step


def cheapen_changelog_replay(recovery_module: Any = faust_recovery) -> None:
    """Work round two per-record costs of faust-streaming 0.15's changelog replay.

    `Recovery._slurp_changelogs` takes each changelog record with
    `asyncio.wait_for(changelog_queue.get(), timeout=5.0)`: a task and a timer per record,
    though the queue mostly holds records already. And after each record it asks
    `need_recovery()`, which builds a `Counter` of the remaining changes of every active
    partition to find whether any is left. A memory store replays its whole state that way
    at every start (about 90 us per record with the fetcher's own cost).

    Here the take runs in place first and needs neither when a record is queued; only a wait
    for the next one goes through `wait_for` (and its timeout, shortened or not by
    `recovery_idle`). `need_recovery` answers the same question without the `Counter`.
    """
    recovery_class = recovery_module.Recovery
    if not getattr(recovery_class.need_recovery, "_cheap", False):
        recovery_class.need_recovery = _need_recovery
    if not isinstance(recovery_module.asyncio, _InPlaceTakeAsyncio):
        recovery_module.asyncio = _InPlaceTakeAsyncio(recovery_module.asyncio)


def _need_recovery(self: Any) -> bool:
    """`Recovery.need_recovery`: does an active partition have changes left to replay?"""
    offsets = self.active_offsets
    return any(
        has_records_left(highwater, offsets[tp]) for tp, highwater in self.active_highwaters.items()
    )


def has_records_left(highwater: int | None, offset: int | None) -> bool:
    """Has a changelog partition records left to replay past `offset` (the last applied)?"""
    return highwater is not None and offset is not None and highwater - offset > 0


_need_recovery._cheap = True  # type: ignore[attr-defined]


class _InPlaceTakeAsyncio:
    """`asyncio` as faust.tables.recovery sees it (possibly already a shim): `wait_for` first
    runs the awaited coroutine in place, and waits (with a task and the timeout) only if it must."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        if self._real.iscoroutine(awaitable):
            done, value = first_step(awaitable)
            if done:
                return value
            awaitable = value
        return await self._real.wait_for(awaitable, timeout=timeout)
