"""Recovery's highwaters are asked of the broker in both processing guarantees
(`faust_fixes.recovery_highwaters`); the same against a real broker is in
tests/broker/test_recovery_highwaters.py."""

from __future__ import annotations

import inspect
import types
from typing import Any

import faust.transport.drivers.aiokafka as faust_aiokafka
import pytest
from faust.types import TP

from processor.faust_fixes.recovery_highwaters import ask_the_broker_for_highwaters

A, B = TP("t-changelog", 0), TP("t-changelog", 1)


class _Client:
    """The Kafka client as the consumer thread sees it: no fetch response yet (no cached last
    stable offset), and what the broker would answer."""

    def __init__(self) -> None:
        self.asked: list[list[Any]] = []

    def last_stable_offset(self, tp: Any) -> int | None:
        return None

    async def end_offsets(self, partitions: Any) -> dict[Any, int]:
        self.asked.append(list(partitions))
        return {A: 11, B: 0}


def _thread(thread_class: type, in_transaction: bool) -> tuple[Any, _Client]:
    client = _Client()
    thread = thread_class.__new__(thread_class)
    thread._ensure_consumer = lambda: client
    thread.consumer = types.SimpleNamespace(in_transaction=in_transaction)
    return thread, client


# In a transaction (exactly-once) Faust's own answer is None here; outside one it asked already.
@pytest.mark.parametrize("in_transaction", [True, False])
async def test_highwaters_are_asked_of_the_broker_in_both_guarantees(in_transaction: bool) -> None:
    thread_class = type("Thread", (faust_aiokafka.AIOKafkaConsumerThread,), {})
    ask_the_broker_for_highwaters(thread_class)
    ask_the_broker_for_highwaters(thread_class)  # idempotent: one wrapper, not two
    assert not getattr(thread_class._highwaters.__wrapped__, "_asked", False)
    thread, client = _thread(thread_class, in_transaction)
    assert await thread._highwaters((A, B)) == {A: 11, B: 0}
    assert client.asked == [[A, B]]


async def test_faust_reads_the_cached_last_stable_offset_in_a_transaction() -> None:
    """The defect: in a transaction, a partition without a fetch response yet has no highwater
    (which recovery takes for an empty changelog). If this fails, look at the fix again."""
    thread_class = type("Thread", (faust_aiokafka.AIOKafkaConsumerThread,), {})
    ask_the_broker_for_highwaters(thread_class)
    faust_highwaters = thread_class._highwaters.__wrapped__
    thread, client = _thread(thread_class, in_transaction=True)
    assert await faust_highwaters(thread, (A, B)) == {A: None, B: None}
    assert client.asked == []
    source = inspect.getsource(faust_highwaters)
    assert "consumer.last_stable_offset(tp)" in source
