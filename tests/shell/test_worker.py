"""The agent's loop (`worker.handle_each`): the record Faust yields goes to the stream with the
records already waiting behind it, as one batch (`faust_fixes.stream_batches`); each is
acknowledged only after its batch; a batch whose writes fail stops the worker at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest
from faust.events import Event
from faust.types.tuples import ConsumerMessage
from mode.utils.queues import FlowControlEvent, ThrowableQueue

from processor.faust_fixes.stream_batches import take_waiting
from processor.worker import handle_each

TOPIC = "tickets.events"


@dataclass
class _Consumer:
    unacked: set[Any] = field(default_factory=set)
    acked: list[int] = field(default_factory=list)

    def ack(self, message: Any) -> bool:
        self.acked.append(message.offset)
        return True


@dataclass
class _Flow:
    active: bool = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class _Topics:
    acking_topics: set[str] = field(default_factory=lambda: {TOPIC})


@dataclass
class _App:
    consumer: _Consumer = field(default_factory=_Consumer)
    topics: _Topics = field(default_factory=_Topics)
    flow_control: _Flow = field(default_factory=_Flow)
    consumer_generation_id: int = 1


class _Channel:
    def __init__(self) -> None:
        flow = FlowControlEvent()
        flow.resume()
        self.queue: ThrowableQueue[Any] = ThrowableQueue(flow_control=flow)


class _Records:
    """Faust's stream as the agent sees it: `events()` yields one record at a time (tracked as
    Faust tracks it), the others wait in the channel's queue."""

    def __init__(self, app: _App) -> None:
        self.app = app
        self.channel = _Channel()
        self.events_total = 0
        self.sensed: list[tuple[str, int]] = []

    async def events(self) -> AsyncIterator[Any]:
        queue = self.channel.queue
        while not queue.empty():
            event = queue.get_nowait()
            event.message.tracked = True
            self.app.consumer.unacked.add(event.message)
            yield event
            event.ack()  # as Faust's iteration does after the agent's turn

    def put(self, offset: int, generation: int = 1) -> None:
        message = ConsumerMessage(TOPIC, 2, offset, 0.0, 0, None, None, b"{}", None,
                                  generation_id=generation)  # fmt: skip
        self.channel.queue.put_nowait(Event(self.app, None, b"{}", None, message))  # type: ignore[arg-type]

    def _on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.sensed.append(("in", offset))

    def _on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        return offset

    def _on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any
    ) -> None:
        assert state in (offset, None)  # the sensors' state of that very record (None: skipped)
        self.sensed.append(("out", offset))

    def _on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass


class _Stream:
    def __init__(self, app: _App, failing: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.app = app
        self.failing = failing
        self.batches: list[list[int]] = []
        self.acked_before: list[list[int]] = []

    async def handle_batch(self, events: Sequence[Any]) -> None:
        offsets = [e.message.offset for e in events]
        self.acked_before.append(sorted(self.app.consumer.acked))
        if set(offsets) & self.failing:
            raise ValueError("payload must not reach the log")
        self.batches.append(offsets)


async def test_the_records_waiting_behind_the_one_in_hand_go_with_it_up_to_the_batch_size() -> None:
    app = _App()
    records = _Records(app)
    for offset in range(7):
        records.put(offset)
    stream = _Stream(app)
    await handle_each(stream, records, batch=3)
    assert stream.batches == [[0, 1, 2], [3, 4, 5], [6]]
    # Nothing of a batch is acknowledged before the stream is done with it.
    assert stream.acked_before == [[], [0, 1, 2], [0, 1, 2, 3, 4, 5]]
    assert sorted(app.consumer.acked) == list(range(7))
    assert records.events_total == 4  # the ones taken beside Faust's, as Faust counts its own
    assert [s for s in records.sensed if s[0] == "out"] == [
        ("out", 1),
        ("out", 2),
        ("out", 4),
        ("out", 5),
    ]


async def test_a_record_of_an_earlier_generation_is_dropped_unacknowledged_as_faust_does() -> None:
    app = _App(consumer_generation_id=2)
    records = _Records(app)
    records.put(0, generation=2)
    records.put(1, generation=1)  # fetched before the rebalance
    records.put(2, generation=2)
    taken = take_waiting(records, 10)
    assert records.channel.queue.empty()
    assert [t.event.message.offset for t in taken] == [0, 2]
    # Dropped as Faust's compiled iterator drops it: not tracked, not acknowledged (an
    # acknowledged offset would let a commit pass it; the seek after the rebalance reads it).
    assert app.consumer.acked == []
    assert sorted(m.offset for m in app.consumer.unacked) == [0, 2]


async def test_nothing_is_taken_while_flow_is_stopped_and_taking_stops_at_an_error() -> None:
    app = _App(flow_control=_Flow(active=False))
    records = _Records(app)
    records.put(0)
    assert take_waiting(records, 10) == []
    assert app.consumer.acked == []  # skipped, as Faust's iterator skips it
    assert records.channel.queue.empty()
    app.flow_control.active = True
    records.put(1)
    records.channel.queue._errors.append(RuntimeError("raised at Faust's next turn"))
    assert take_waiting(records, 10) == []
    assert records.channel.queue.qsize() == 1


class _Stopped(Exception):
    pass


def _stop(code: int) -> NoReturn:
    raise _Stopped(code)


async def test_a_batch_whose_writes_fail_stops_the_worker_before_anything_is_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _App()
    records = _Records(app)
    for offset in range(4):
        records.put(offset)
    stream = _Stream(app, failing={1})
    with pytest.raises(_Stopped) as stopped:
        await handle_each(stream, records, batch=2, stop=_stop)
    assert stopped.value.args == (1,)  # exit code 1: a crash
    assert stream.batches == []  # nothing after it either
    assert app.consumer.acked == []  # neither the record Faust yielded nor the one taken
    failed = [r for r in caplog.records if r.levelname == "CRITICAL"]
    where = [(vars(r)["topic"], vars(r)["partition"], vars(r)["offset"], vars(r)["records"])
             for r in failed]  # fmt: skip
    assert where == [(TOPIC, 2, 0, 2)]
    assert "payload" not in caplog.text.split("Traceback")[0]


async def _plain(n: int) -> AsyncIterator[Any]:
    for offset in range(n):
        message = ConsumerMessage(TOPIC, 2, offset, 0.0, 0, None, None, b"{}", None)
        yield Event(None, None, b"{}", None, message)  # type: ignore[arg-type]


async def test_an_iterable_without_a_channel_is_handled_a_record_at_a_time() -> None:
    stream = _Stream(_App())
    await handle_each(stream, _plain(3))
    assert stream.batches == [[0], [1], [2]]
