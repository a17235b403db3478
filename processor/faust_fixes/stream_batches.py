"""Faust hands an agent one record per turn of the event loop (a cost, not a loss)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.types import EventT


@dataclass(frozen=True, slots=True)
class Taken:
    """An event taken from the channel beside the one Faust's iteration yielded, with the state
    Faust's sensors returned for it."""

    event: EventT[bytes]
    sensor_state: Any


def take_waiting(stream: Any, limit: int) -> list[Taken]:
    """Up to `limit` events already waiting in the agent's channel, taken as Faust takes each.

    Faust's stream iteration (the compiled `StreamIterator` of faust-streaming 0.15, and its
    pure-Python twin `Stream._py_aiter`) yields one record per turn of the event loop (an
    `asyncio.sleep(0)` before each, then the async generator's own round trip), and the
    agent's work is then per record too. Here the records that are already in the channel's
    queue when the agent has one in hand are taken with it, without a turn of the loop each,
    so that the stream applies them as one batch. Each is taken as the compiled iterator (the
    one Faust uses when it is built, as here) takes it: a record of an earlier generation, or
    read while flow is stopped (a rebalance), is dropped, neither tracked nor acknowledged (the
    seek that follows reads it again; the pure-Python twin would acknowledge it, which could
    let a commit pass it); any other is tracked as unacknowledged and reported to the
    sensors. The caller acknowledges each with `done` once its effects are written; until
    then its offset (and any after it in its partition) is not committed.

    Taking stops at a queued error (Faust raises it at its next iteration), at anything that
    is not an event, and at `limit`. A channel without a queue yields nothing.
    """
    queue = getattr(getattr(stream, "channel", None), "queue", None)
    items = getattr(queue, "_queue", None)
    errors = getattr(queue, "_errors", None)
    if queue is None or items is None or errors is None or limit <= 0:
        return []
    app = stream.app
    consumer = app.consumer
    acking = app.topics.acking_topics
    active = app.flow_control.is_active
    taken: list[Taken] = []
    while len(taken) < limit and items and not errors and isinstance(items[0], EventT):
        event = queue.get_nowait()
        message = event.message
        tp, offset = message.tp, message.offset
        if not active() or message.generation_id != app.consumer_generation_id:
            continue  # skipped, neither tracked nor acknowledged, as by Faust's iterator
        if message.topic in acking and not message.tracked:
            message.tracked = True
            consumer.unacked.add(message)
            stream._on_message_in(tp, offset, message)
        state = stream._on_stream_event_in(tp, offset, stream, event)
        stream.events_total += 1
        taken.append(Taken(event, state))
    return taken


def done(stream: Any, taken: Taken) -> None:
    """Acknowledge a taken event, as Faust's iteration acknowledges the one it yielded."""
    event = taken.event
    last = event.ack()
    message = event.message
    stream._on_stream_event_out(message.tp, message.offset, stream, event, taken.sensor_state)
    if last:
        stream._on_message_out(message.tp, message.offset, message)
