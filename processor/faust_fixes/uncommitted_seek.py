"""Records of a dropped batch are never read again on a partition never committed (record
loss)."""

from __future__ import annotations

from typing import Any

import faust.transport.drivers.aiokafka as faust_aiokafka


def seek_uncommitted_to_beginning(
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread,
) -> None:
    """Work round a record loss in faust-streaming 0.15: records drawn, dropped, never read again.

    Faust's `Consumer.getmany` drops the rest of a batch the Kafka client already handed over
    when the flow stops or the group's generation changes in the middle of it (a rebalance,
    `seek_with_flow_stopped`), trusting the seek to committed offsets that follows to fetch them
    again. aiokafka's `seek_to_committed` seeks only partitions whose committed offset is above
    0: a partition never committed keeps the client's position past the dropped records, which
    are then never delivered (seen: a worker restarted after a SIGKILL before its first commit
    read none of a topic's records, and its deadlines fired on state without them). Here the
    source partitions (`app.sla_source_topics`) left unsought are reset to their beginning, as
    the `earliest` reset policy would place them, and the stream is told which partitions were
    sought (`app.sla_on_seek`), so that positions reported before the seek count for nothing.
    """
    if getattr(thread_class.seek_to_committed, "_or_beginning", False):
        return
    seek_to_committed = thread_class.seek_to_committed

    async def seek_to_committed_or_beginning(self: Any) -> Any:
        committed = await seek_to_committed(self)
        app = self.consumer.app
        sources = getattr(app, "sla_source_topics", ())
        unsought = [
            tp for tp, offset in committed.items() if tp.topic in sources and not (offset or 0) > 0
        ]
        if unsought:
            await self.seek_to_beginning(*unsought)
        on_seek = getattr(app, "sla_on_seek", None)
        if on_seek is not None:
            on_seek(list(committed))
        return committed

    seek_to_committed_or_beginning._or_beginning = True  # type: ignore[attr-defined]
    thread_class.seek_to_committed = seek_to_committed_or_beginning
