"""A flush of the producer buffer returns once every table write is handed over
(`faust_fixes.producer_flush`)."""

from __future__ import annotations

import asyncio
import types
from typing import Any

from faust.transport.producer import ProducerBuffer

from processor.faust_fixes.producer_flush import flush_producer_buffer_fully


class _SlowChannel:
    """A client hand-over that takes longer than faust's 0.1 s flush patience."""

    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.15)
        self.published.append(fut.n)


def _pending(channel: _SlowChannel, n: int) -> Any:
    return types.SimpleNamespace(n=n, message=types.SimpleNamespace(channel=channel))


async def _flushed(buffer_class: Any) -> tuple[list[int], int]:
    """Put three table writes in a running buffer, flush it, and say what was handed over."""
    buffer = buffer_class()
    buffer.app = types.SimpleNamespace(conf=types.SimpleNamespace(producer_threaded=False))
    channel = _SlowChannel()
    await buffer.start()
    try:
        for n in range(3):
            buffer.put(_pending(channel, n))
        await buffer.flush()
        return list(channel.published), buffer.size
    finally:
        await asyncio.sleep(0.5)  # let faust's buffer drain, or its stop raises
        await buffer.stop()


async def test_faust_s_buffer_flush_returns_with_table_writes_unsent() -> None:
    """The defect itself, on faust's own class: if this starts failing, faust fixed it."""
    published, size = await _flushed(type("Buffer", (ProducerBuffer,), {}))
    assert published != [0, 1, 2] or size != 0


async def test_a_flush_returns_once_every_table_write_is_handed_over() -> None:
    buffer_class = type("Buffer", (ProducerBuffer,), {})
    flush_producer_buffer_fully(buffer_class)
    flush_producer_buffer_fully(buffer_class)  # idempotent
    assert await _flushed(buffer_class) == ([0, 1, 2], 0)
