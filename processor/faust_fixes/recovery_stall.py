"""A changelog recovery seen waiting for records that never came (a worker stalled)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from processor.faust_fixes.replay_costs import has_records_left

log = logging.getLogger(__name__)

# A recovery whose offsets have not moved for this long, with records left to read, is sought
# again. A recovery that reads keeps moving (1M records took 87 s, every one of them a step).
STALL_SECONDS = 5.0
CHECK_EVERY_SECONDS = 0.5


def lagging(
    highwaters: Mapping[Any, int | None], offsets: Mapping[Any, int | None]
) -> dict[Any, int]:
    """The changelog partitions with records left to read, each with the offset to read them
    again from: the last one applied (Faust's own seek, which recovery skips as already seen),
    or the beginning when none was."""
    found: dict[Any, int] = {}
    for tp, highwater in highwaters.items():
        offset = offsets.get(tp)
        if offset is not None and has_records_left(highwater, offset):
            found[tp] = max(offset, 0)
    return found


async def watch_recovery(
    app: Any,
    on_stall: Callable[[], None] = lambda: None,
    *,
    after: float = STALL_SECONDS,
    every: float = CHECK_EVERY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Seek a stalled changelog recovery again (its records read anew) and log what it saw.

    Not a fix of a known defect: a work-round of a stall whose cause is not established. In the
    rebalance test, under load, a memory-store worker that kept two partitions in a hand-over
    re-read their changelogs from the beginning (8 records) and never finished: Faust's
    `Recovery._slurp_changelogs` ends only when records up to each high watermark have come
    through its queue, and no more came, so the worker's streams stayed paused until the next
    rebalance (1 run in 16; not seen in 40 runs since). Here, when a recovery has records left
    and its offsets have not moved for `after` seconds, the partitions left are sought again
    from their last applied offset (records seen are skipped by recovery), resumed with the
    flow and the fetcher as recovery resumes them, and a warning logs the consumer's state
    (flow, paused and active changelog partitions, read offsets, queue), so that the cause
    shows where it happens again. A recovery that moves is never touched.
    """
    seen: dict[Any, Any] | None = None
    since = clock()
    while True:
        await asyncio.sleep(every)
        recovery = app.tables.recovery
        left = lagging(recovery.active_highwaters, recovery.active_offsets)
        if not recovery.in_recovery or not left:
            seen = None
            continue
        now = clock()
        offsets = dict(recovery.active_offsets)
        if offsets != seen:
            seen, since = offsets, now
            continue
        if now - since < after:
            continue
        on_stall()
        _log_stall(app, left, now - since)
        since = now
        try:
            await seek_again(app, left)
        except Exception:
            log.exception("recovery stalled: seeking again failed")


async def seek_again(app: Any, positions: Mapping[Any, int]) -> None:
    """Read `positions` (changelog partition: offset) again, as recovery starts reading them."""
    consumer = app.consumer
    await consumer.seek_wait(dict(positions))
    consumer.resume_partitions(set(positions))
    app.flow_control.resume()
    consumer.resume_flow()
    await app._fetcher.maybe_start()


def _log_stall(app: Any, left: Mapping[Any, int], seconds: float) -> None:
    consumer = app.consumer
    recovery = app.tables.recovery

    def name(tp: Any) -> str:
        return f"{tp.topic}[{tp.partition}]"

    offsets, highwaters = recovery.active_offsets, recovery.active_highwaters
    changelogs = set(highwaters)
    active = consumer._active_partitions or set()
    log.warning(
        "recovery stalled: reading its changelogs again",
        extra={
            "seconds": round(seconds, 1),
            "generation": app.consumer_generation_id,
            "left": {name(tp): [offsets.get(tp), highwaters.get(tp)] for tp in left},
            "flow": consumer.flow_active,
            "queues": app.flow_control.is_active(),
            "queued": app.tables.changelog_queue.qsize(),
            "active": sorted(name(tp) for tp in changelogs & active),
            "paused": sorted(name(tp) for tp in changelogs & consumer._paused_partitions),
            "read": {name(tp): consumer._read_offset.get(tp) for tp in left},
            "fetcher": _awaiting(app),
        },
    )


def _awaiting(app: Any) -> list[str]:
    """Where the fetcher's task waits: its chain of awaits, innermost last."""
    for task in asyncio.all_tasks():
        chain: list[str] = []
        awaited: Any = task.get_coro()
        while awaited is not None and len(chain) < 30:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
            chain.append(
                f"{frame.f_code.co_name}:{frame.f_lineno}" if frame else type(awaited).__name__
            )
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
        if any(step.startswith("_drain_messages") for step in chain):
            return chain
    return []
