"""Only the changelog idle wait of recovery is shortened (`faust_fixes.recovery_idle`)."""

from __future__ import annotations

import asyncio
import inspect
import types
from typing import Any

import faust.tables.recovery

from processor.faust_fixes.recovery_idle import RECOVERY_IDLE_SECONDS, shorten_recovery_idle_wait


class _Recorder:
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        self.timeouts.append(timeout)
        return await awaitable


async def test_only_the_changelog_idle_wait_is_shortened() -> None:
    recorder = _Recorder()
    module = types.SimpleNamespace(asyncio=recorder)
    shorten_recovery_idle_wait(module)
    shorten_recovery_idle_wait(module)  # idempotent: one shim, not two
    patched = module.asyncio

    async def value() -> int:
        return 7

    assert await patched.wait_for(value(), timeout=5.0) == 7  # the idle wait
    assert await patched.wait_for(value(), timeout=90.0) == 7  # a seek: untouched
    assert recorder.timeouts == [RECOVERY_IDLE_SECONDS, 90.0]


def test_the_shim_passes_the_rest_of_asyncio_through() -> None:
    module = types.SimpleNamespace(asyncio=asyncio)
    shorten_recovery_idle_wait(module)
    assert module.asyncio.TimeoutError is asyncio.TimeoutError
    assert module.asyncio.sleep is asyncio.sleep


def test_faust_still_has_the_wait_this_shortens() -> None:
    """If faust's recovery changes, the shim must be revisited (it keys on the literal 5 s)."""
    source = inspect.getsource(faust.tables.recovery)
    assert "changelog_queue.get(), timeout=5.0" in source
