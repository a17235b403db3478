"""The work-rounds of faust-streaming 0.15 defects in processor.service, on their own.

The broker tests show their effect end to end (restarts in both guarantees); these pin what each
one changes, and what it leaves alone.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import faust.tables.recovery
import faust.transport.consumer
import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from processor.service import (
    RECOVERY_IDLE_SECONDS,
    commit_between_records,
    flush_producer_buffer_fully,
    keep_queues_on_redundant_resume,
    log_offset_gaps,
    report_fetches,
    seek_uncommitted_to_beginning,
    seek_with_flow_stopped,
    shorten_recovery_idle_wait,
)


async def test_a_resume_while_flowing_keeps_queued_records() -> None:
    flow = FlowControlEvent()
    keep_queues_on_redundant_resume(flow)
    queue: FlowControlQueue[int] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()  # the start: nothing queued
    await queue.put(1)
    flow.resume()  # recovery's second resume, records already fetched
    assert queue.qsize() == 1
    flow.suspend()  # a rebalance: what is queued is stale, and is dropped at the resume
    flow.resume()
    assert queue.qsize() == 0


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
    import inspect

    source = inspect.getsource(faust.tables.recovery)
    assert "changelog_queue.get(), timeout=5.0" in source


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
    import inspect

    from faust.tables.recovery import Recovery

    for method in (Recovery.on_recovery_completed, Recovery._resume_streams):
        source = inspect.getsource(method)
        seek = source.index("consumer.perform_seek()")
        assert "consumer.resume_flow()" in source[seek:], method.__name__
    consumer_source = inspect.getsource(faust.transport.consumer.Consumer.getmany)
    assert "while flow not active" in consumer_source  # its own seek: the flow is already stopped


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
    import inspect

    from aiokafka.consumer.consumer import AIOKafkaConsumer

    assert "if offset and offset > 0:" in inspect.getsource(AIOKafkaConsumer.seek_to_committed)
    getmany = inspect.getsource(faust.transport.consumer.Consumer.getmany)
    assert "if not self.flow_active:\n                    break" in getmany


class _GapConsumer:
    def __init__(self, in_transaction: bool) -> None:
        self.in_transaction = in_transaction
        self.gaps: list[tuple[int, int]] = []

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        self.gaps.append((offset_from, offset_to))


@pytest.mark.parametrize(("in_transaction", "level"), [(False, "WARNING"), (True, "INFO")])
async def test_an_offset_gap_is_recorded_and_logged(
    caplog: pytest.LogCaptureFixture, in_transaction: bool, level: str
) -> None:
    from faust.types import TP

    consumer_class = type("Consumer", (_GapConsumer,), {})
    log_offset_gaps(consumer_class)
    log_offset_gaps(consumer_class)  # idempotent: one line per gap, not two
    consumer = consumer_class(in_transaction)
    caplog.set_level("INFO", logger="processor.service")
    await consumer._add_gap(TP("t.tickets", 3), 8, 12)
    assert consumer.gaps == [(8, 12)]  # faust's own bookkeeping still runs
    lines = [r for r in caplog.records if r.name == "processor.service"]
    assert [(r.levelname, r.getMessage(), r.partition, r.to) for r in lines] == [  # type: ignore[attr-defined]
        (level, "offsets counted as processed without a record", 3, 12)
    ]


def test_faust_still_fills_offset_gaps_where_this_logs_them() -> None:
    import inspect

    source = inspect.getsource(faust.transport.consumer.Consumer._drain_messages)
    assert "await self._add_gap(tp, r_offset + 1, offset)" in source


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
    from faust.transport.producer import ProducerBuffer

    published, size = await _flushed(type("Buffer", (ProducerBuffer,), {}))
    assert published != [0, 1, 2] or size != 0


async def test_a_flush_returns_once_every_table_write_is_handed_over() -> None:
    from faust.transport.producer import ProducerBuffer

    buffer_class = type("Buffer", (ProducerBuffer,), {})
    flush_producer_buffer_fully(buffer_class)
    flush_producer_buffer_fully(buffer_class)  # idempotent
    assert await _flushed(buffer_class) == ([0, 1, 2], 0)


class _Committer:
    """A consumer whose commit records what it saw: the record in hand, the buffer flushed."""

    def __init__(self, in_transaction: bool, lock: asyncio.Lock) -> None:
        self.in_transaction = in_transaction
        self.seen: list[tuple[bool, bool]] = []
        self.flushed = False

        async def flush() -> None:
            self.flushed = True

        buffer = types.SimpleNamespace(flush=flush)
        self.app = types.SimpleNamespace(
            sla_record_lock=lock, producer=types.SimpleNamespace(buffer=buffer)
        )

    async def force_commit(self, *args: Any, **kwargs: Any) -> bool:
        self.seen.append((self.app.sla_record_lock.locked(), self.flushed))
        return True


@pytest.mark.parametrize("in_transaction", [True, False])
async def test_a_commit_waits_for_the_record_in_hand(in_transaction: bool) -> None:
    consumer_class = type("Consumer", (_Committer,), {})
    commit_between_records(consumer_class)
    commit_between_records(consumer_class)  # idempotent
    lock = asyncio.Lock()
    consumer = consumer_class(in_transaction, lock)
    order: list[str] = []

    async def record() -> None:
        async with lock:
            order.append("record starts")
            await asyncio.sleep(0.05)  # an await in the middle of the record
            order.append("record ends")

    async def commit() -> None:
        await asyncio.sleep(0.01)
        assert await consumer.force_commit()
        order.append("commit")

    await asyncio.gather(record(), commit())
    assert order == ["record starts", "record ends", "commit"]
    # The lock is the commit's while it runs; the buffer is flushed into a transaction only.
    assert consumer.seen == [(True, in_transaction)]


def test_faust_still_commits_without_flushing_its_buffer_in_a_transaction() -> None:
    """The defect: if faust flushes the producer buffer before committing a transaction, or
    stops committing from its own tasks, this work-round may go."""
    import inspect

    source = inspect.getsource(faust.transport.consumer.Consumer._commit_offsets)
    transaction_branch = source.split("if self.in_transaction:")[1].split("else:")[0]
    assert "flush" not in transaction_branch
    assert "await self.commit()" in inspect.getsource(faust.transport.consumer.Consumer)


async def test_each_fetch_is_reported_from_the_client_thread() -> None:
    import faust.transport.drivers.aiokafka as drivers

    reported: list[tuple[Any, Any, Any]] = []

    class Thread:
        consumer = types.SimpleNamespace(
            app=types.SimpleNamespace(sla_on_fetched=lambda *a: reported.append(a))
        )

        async def _fetch_records(self, consumer: Any, active: Any, timeout: Any = None,
                                 max_records: Any = None) -> Any:  # fmt: skip
            return {"tp": ["record"]}

    report_fetches(Thread)
    report_fetches(Thread)  # idempotent
    assert await Thread()._fetch_records("aiokafka", {"tp"}, timeout=1.0) == {"tp": ["record"]}
    assert reported == [("aiokafka", {"tp"}, {"tp": ["record"]})]
    assert "_fetch_records" in vars(drivers.AIOKafkaConsumerThread)  # still the hand-over point
