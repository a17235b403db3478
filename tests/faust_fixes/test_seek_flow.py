"""The seek to committed offsets runs with the flow stopped (`faust_fixes.seek_flow`)."""

from __future__ import annotations

import asyncio
import inspect

import faust.transport.consumer
import pytest

from processor.faust_fixes.seek_flow import seek_with_flow_stopped


class _Consumer:
    """The part of faust's Consumer the seek work-round touches."""

    def __init__(self, fail: bool = False) -> None:
        self.flow_active = True
        self.flowing_during_seek: list[bool] = []
        self.fail = fail

    def stop_flow(self) -> None:
        self.flow_active = False

    def resume_flow(self) -> None:
        self.flow_active = True

    async def perform_seek(self) -> None:
        await asyncio.sleep(0)  # the committed offsets: a request to the broker
        self.flowing_during_seek.append(self.flow_active)
        if self.fail:
            raise TimeoutError


async def test_the_seek_to_committed_offsets_runs_with_the_flow_stopped() -> None:
    consumer_class = type("Consumer", (_Consumer,), {})
    seek_with_flow_stopped(consumer_class)
    seek_with_flow_stopped(consumer_class)  # idempotent: one wrapper, not two
    consumer = consumer_class()
    await consumer.perform_seek()
    assert consumer.flowing_during_seek == [False]
    assert consumer.flow_active is False  # the caller resumes it, after the seek


async def test_a_failed_seek_leaves_the_flow_as_it_was() -> None:
    consumer_class = type("Consumer", (_Consumer,), {})
    seek_with_flow_stopped(consumer_class)
    consumer = consumer_class(fail=True)
    with pytest.raises(asyncio.TimeoutError):
        await consumer.perform_seek()
    assert consumer.flowing_during_seek == [False]
    assert consumer.flow_active is True


def test_faust_still_resumes_the_flow_after_each_seek() -> None:
    """The work-round leaves the flow stopped: each of faust's seeks must be followed by a resume."""
    from faust.tables.recovery import Recovery

    for method in (Recovery.on_recovery_completed, Recovery._resume_streams):
        source = inspect.getsource(method)
        seek = source.index("consumer.perform_seek()")
        assert "consumer.resume_flow()" in source[seek:], method.__name__
    consumer_source = inspect.getsource(faust.transport.consumer.Consumer.getmany)
    assert "while flow not active" in consumer_source  # its own seek: the flow is already stopped
