"""Never-committed source partitions are read from their beginning after a seek
(`faust_fixes.uncommitted_seek`)."""

from __future__ import annotations

import asyncio
import inspect
import types
from typing import Any

import faust.transport.consumer
from faust.types import TP

from processor.faust_fixes.uncommitted_seek import seek_uncommitted_to_beginning


class _ConsumerThread:
    """Faust's consumer thread as the work-round sees it: a seek to committed offsets that
    answers per partition (None: never committed), a seek to the beginning, the app."""

    def __init__(self, committed: dict[Any, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[Any] = []
        self.sought: list[list[Any]] = []
        app = types.SimpleNamespace(sla_source_topics={"in"}, sla_on_seek=self.sought.append)
        self.consumer = types.SimpleNamespace(app=app)

    async def seek_to_committed(self) -> dict[Any, int | None]:
        await asyncio.sleep(0)
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self.to_beginning.extend(partitions)


async def test_source_partitions_never_committed_are_sought_to_their_beginning() -> None:
    thread_class = type("Thread", (_ConsumerThread,), {})
    seek_uncommitted_to_beginning(thread_class)
    seek_uncommitted_to_beginning(thread_class)  # idempotent: one wrapper, not two
    committed = {TP("in", 0): None, TP("in", 1): 0, TP("in", 2): 7, TP("changelog", 0): None}
    thread = thread_class(committed)
    assert await thread.seek_to_committed() == committed  # what faust gets, unchanged
    # Sought by aiokafka only above 0: the others keep a position past records faust dropped.
    assert thread.to_beginning == [TP("in", 0), TP("in", 1)]
    assert thread.sought == [list(committed)]  # the stream forgets what was fetched before


def test_aiokafka_still_seeks_only_offsets_above_zero_and_faust_still_drops_a_batch() -> None:
    """What the work-round relies on: if either changes, look at it again."""
    from aiokafka.consumer.consumer import AIOKafkaConsumer

    assert "if offset and offset > 0:" in inspect.getsource(AIOKafkaConsumer.seek_to_committed)
    getmany = inspect.getsource(faust.transport.consumer.Consumer.getmany)
    assert "if not self.flow_active:\n                    break" in getmany
