"""Exactly-once recovery reads how far each changelog goes from a cache that a fetch may not have
filled yet (state lost on a restart)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import faust.transport.drivers.aiokafka as faust_aiokafka


def ask_the_broker_for_highwaters(
    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread,
) -> None:
    """Work round a state loss in faust-streaming 0.15 exactly-once recovery.

    Recovery replays each changelog partition up to its high watermark, which it asks with
    `Consumer.highwaters`. Outside transactions that is a ListOffsets request to the broker;
    in a transaction (exactly-once) it is `AIOKafkaConsumer.last_stable_offset(tp)`, the last
    stable offset the client kept from its latest fetch response for the partition: nothing
    asks the broker. A client assigned the partition moments before has none yet (None,
    which recovery takes for an empty changelog, highwater -1) or one from an earlier fetch.
    Recovery then ends without the partition's records: a restarted worker starts from empty
    or old states while its consumer offsets say those events are done (seen: an exactly-once
    worker restarted after a SIGKILL had highwater -1 for a changelog partition ending at
    offset 10; likely, not shown, the cause of a restart that dead-lettered the later events
    of three partitions' tickets as `unknown_ticket`). The same cached value is reported
    against Faust (robinhood/faust#658), where it crashed an exactly-once rebalance.

    Here `highwaters` always asks the broker (`end_offsets`). The client's isolation level
    goes with the request: under exactly-once (read_committed) the broker answers with the
    last stable offset, the end of what recovery can read, as the cache would when filled.
    A request that fails (no answer within the broker request timeout) now stops the
    recovery, and with it the worker, as it always did under at-least-once: a worker that
    cannot learn how far its changelogs go does not start on states it cannot vouch for.
    """
    if getattr(thread_class._highwaters, "_asked", False):
        return
    cached = thread_class._highwaters

    async def highwaters_asked(self: Any, partitions: Iterable[Any]) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        found: Mapping[Any, int] = await consumer.end_offsets(list(partitions))
        return found

    highwaters_asked._asked = True  # type: ignore[attr-defined]
    highwaters_asked.__wrapped__ = cached  # type: ignore[attr-defined]
    thread_class._highwaters = highwaters_asked
