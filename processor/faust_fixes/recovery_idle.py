"""Recovery waits a hard-coded 5 s twice at the end of a transactional changelog (slow start)."""

from __future__ import annotations

from typing import Any

import faust.tables.recovery as faust_recovery

# Faust's changelog recovery waits this long for the next record before it looks for the end.
_FAUST_RECOVERY_IDLE_SECONDS = 5.0
RECOVERY_IDLE_SECONDS = 0.5


def shorten_recovery_idle_wait(recovery_module: Any = faust_recovery) -> None:
    """Work round a slow exactly-once restart in faust-streaming 0.15 recovery.

    A transactional changelog ends with a commit marker, an offset no record reaches, so
    `Recovery._slurp_changelogs` only ends after two consecutive idle waits, for the next
    changelog record, of a hard-coded 5 s each: every exactly-once start or rebalance took
    10 s longer than the changelogs needed. The idle waits are safe to shorten: one ends only
    when no record is queued, and the end is then accepted only for partitions whose fetch
    position has passed their high watermark. Only that wait (its literal 5 s) is changed.
    """
    real = recovery_module.asyncio
    if isinstance(real, _ShortIdleAsyncio):
        return

    recovery_module.asyncio = _ShortIdleAsyncio(real)


class _ShortIdleAsyncio:
    """`asyncio` as faust.tables.recovery sees it, with the changelog idle wait shortened."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        if timeout == _FAUST_RECOVERY_IDLE_SECONDS:
            timeout = RECOVERY_IDLE_SECONDS
        return self._real.wait_for(awaitable, timeout=timeout)
