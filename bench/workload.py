"""Input for the end-to-end benchmarks: a realistic ticket mix and a pile of open tickets, as
CloudEvent bytes keyed by subject, and the Kafka plumbing to pre-produce and watch them.

The mix is bench/engine.py's (same lives: open, answer, updates, pauses, severity changes,
resolve, close), anchored one day after `anchor` so that no deadline falls due while the
benchmark runs: the tick loop stays idle and the figure is the event path alone.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.engine import _T0, ticket_events
from processor.sla.policy import Policy

Record = tuple[bytes, bytes]  # (key, value)
_TOPIC_EXISTS = 36
_EVENTS_PER_TICKET = 5.6  # bench/engine.py's mix: 560,731 events for 100,000 tickets


def cloudevent(type_: str, subject: str, at: datetime, data: dict[str, Any], n: int = 0) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{subject}/{n}",
            "source": "bench",
            "type": type_,
            "time": at.isoformat().replace("+00:00", "Z"),
            "subject": subject,
            "data": data,
        }
    )


def ticket_mix(events: int, policy: Policy, anchor: datetime, seed: int = 2026) -> list[Record]:
    """The first `events` events, in time order, of about events/5.6 generated ticket lives
    shifted to start one day after `anchor` (tickets still open at the cut stay open)."""
    rng = random.Random(seed)
    shift = anchor + timedelta(days=1) - _T0
    tickets = max(1, int(events / _EVENTS_PER_TICKET * 1.1))
    stamped: list[tuple[datetime, int, int, bytes, bytes]] = []
    for number in range(tickets):
        subject = f"BENCH-{number:08d}"
        for n, (at, type_, data) in enumerate(ticket_events(rng, policy, number)):
            at += shift
            raw = cloudevent(type_, subject, at, data, n)
            stamped.append((at, number, n, subject.encode(), raw))
    stamped.sort(key=lambda item: item[:3])
    return [(key, raw) for *_, key, raw in stamped[:events]]


def open_tickets(
    count: int,
    prefix: str,
    now: datetime,
    due: Sequence[datetime] | None = None,
    target: timedelta = timedelta(hours=8),
) -> list[Record]:
    """`count` ticket.opened events, low severity, `time` = now: the first deadline (the
    initial response) is 8 hours away and nothing else is due before it.

    With `due` (one instant per ticket), ticket i is opened at `due[i] - target` instead, so its
    initial-response breach (low severity: the only deadline; `target` is the policy's low
    response target, 8 h in every tier of the default policy) falls due at `due[i]`."""
    tiers = ("premium", "select", "basic")
    records = []
    for i in range(count):
        subject = f"{prefix}-{i:08d}"
        at = now if due is None else due[i] - target
        data = {"customer_id": f"C-{i % 5000}", "support_tier": tiers[i % 3], "severity": "low"}
        records.append((subject.encode(), cloudevent("ticket.opened", subject, at, data)))
    return records


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- Kafka --------------------------------------------------------------------------------------


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = [NewTopic(n, partitions, 1) for n in names]
        response = await admin.create_topics(wanted)
        for name, code, *_ in response.topic_errors:
            if code not in (0, _TOPIC_EXISTS):
                raise RuntimeError(f"cannot create topic {name}: error code {code}")
        deadline = time.monotonic() + 15
        while True:  # CreateTopics returns before the metadata cache knows the topics
            described = await admin.describe_topics([t.name for t in wanted])
            if all(t["error_code"] == 0 and len(t["partitions"]) == partitions for t in described):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics not visible: {described}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def delete_topics_matching(bootstrap: str, part: str) -> int:
    """Delete every topic whose name contains `part` (one benchmark run's topics, Quix's
    `changelog__<group>--...` included)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [n for n in await admin.list_topics() if part in n]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> float:
    """Send every record (default murmur2 partitioner on the key); returns seconds taken."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
        ]
        found: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return found
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def first_last_timestamps(bootstrap: str, topic: str) -> tuple[float, float, int] | None:
    """(earliest, latest) record timestamp in seconds over all partitions of `topic`, and the
    record count; None if the topic is empty. Reads only the first and the last record of each
    partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        live = [tp for tp in tps if ends[tp] > starts[tp]]
        if not live:
            return None
        consumer.assign(live)
        stamps: list[float] = []
        for which in (starts, {tp: ends[tp] - 1 for tp in live}):
            for tp in live:
                consumer.seek(tp, which[tp])
                record = await asyncio.wait_for(consumer.getone(tp), 30)
                stamps.append(record.timestamp / 1000)
        half = len(live)
        return min(stamps[:half]), max(stamps[half:]), sum(ends[tp] - starts[tp] for tp in live)
    finally:
        await consumer.stop()


class OffsetWatch:
    """Polls a group's committed offsets on the input topic until they reach the end offsets."""

    def __init__(self, bootstrap: str, group: str, targets: dict[TopicPartition, int]) -> None:
        self.bootstrap = bootstrap
        self.group = group
        self.targets = targets
        self.admin: AIOKafkaAdminClient | None = None

    async def __aenter__(self) -> OffsetWatch:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.admin is not None
        await self.admin.close()

    async def committed(self) -> int:
        """Records committed so far on the target partitions."""
        assert self.admin is not None
        try:
            found = await self.admin.list_consumer_group_offsets(
                self.group, partitions=list(self.targets)
            )
        except Exception:  # the group may not exist yet
            return 0
        total = 0
        for tp, end in self.targets.items():
            meta = found.get(tp)
            if meta is not None and meta.offset > 0:
                total += min(meta.offset, end)
        return total
