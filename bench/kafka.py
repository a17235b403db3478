"""The runner's side of Kafka: create and delete a run's topics, pre-produce its input, watch a
group's committed offsets, and read back what a worker sent. Plain aiokafka, no Faust."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

Record = tuple[bytes, bytes]  # (key, value)
Output = tuple[str, bytes, int, bytes]  # (topic, key, CreateTime ms, value)
_TOPIC_EXISTS = 36


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, configs: dict[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = [NewTopic(n, partitions, 1, topic_configs=configs or {}) for n in names]
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


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(parts)]


@contextlib.asynccontextmanager
async def consumer(bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of no group (nothing committed), stopped on exit."""
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    async with consumer(bootstrap) as client:
        tps = [tp for t in topics for tp in await partitions_of(client, t)]
        found: dict[TopicPartition, int] = await client.end_offsets(tps)
        return found


async def count(bootstrap: str, topics: Sequence[str]) -> int:
    """Records ever written to `topics` (the sum of their end offsets); 0 for a topic that was
    never created."""
    try:
        return sum((await end_offsets(bootstrap, topics)).values())
    except Exception:
        return 0


async def first_last_timestamps(bootstrap: str, topic: str) -> tuple[float, float, int] | None:
    """(earliest, latest) record timestamp in seconds over all partitions of `topic`, and the
    record count; None if the topic is empty. Reads only the first and the last record of each
    partition."""
    async with consumer(bootstrap) as client:
        tps = await partitions_of(client, topic)
        ends = await client.end_offsets(tps)
        starts = await client.beginning_offsets(tps)
        live = [tp for tp in tps if ends[tp] > starts[tp]]
        if not live:
            return None
        client.assign(live)
        stamps: list[float] = []
        for which in (starts, {tp: ends[tp] - 1 for tp in live}):
            for tp in live:
                client.seek(tp, which[tp])
                record = await asyncio.wait_for(client.getone(tp), 30)
                stamps.append(record.timestamp / 1000)
        half = len(live)
        return min(stamps[:half]), max(stamps[half:]), sum(ends[tp] - starts[tp] for tp in live)


async def timestamps_since(bootstrap: str, topic: str, since_ms: int) -> list[tuple[int, int]]:
    """(partition, CreateTime ms) of every record of `topic` at or after `since_ms`, in time
    order."""
    async with consumer(bootstrap) as client:
        tps = await partitions_of(client, topic)
        ends = await client.end_offsets(tps)
        found = await client.offsets_for_times(dict.fromkeys(tps, since_ms))
        live = {tp: off.offset for tp, off in found.items() if off is not None}
        if not live:
            return []
        client.assign(list(live))
        for tp, off in live.items():
            client.seek(tp, off)
        out: list[tuple[int, int]] = []
        while True:
            behind = [tp for tp in live if await client.position(tp) < ends[tp]]
            if not behind:
                break
            for tp, messages in (await client.getmany(timeout_ms=500)).items():
                out += [(tp.partition, m.timestamp) for m in messages]
        return sorted(out, key=lambda x: x[1])


async def group_members(bootstrap: str, group: str) -> int | None:
    """Members of a consumer group (a SIGKILLed worker stays one until its session times out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        node = await admin.find_coordinator(group)
        [described] = await admin.describe_consumer_groups([group], group_coordinator_id=node)
        return sum(len(g["members"]) for g in described.to_object()["groups"])
    except Exception:
        return None
    finally:
        await admin.close()


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


class OutputReader:
    """Follows output topics from their start (read_committed); keeps the records whose key
    starts with one of `prefixes`, by prefix."""

    def __init__(self, bootstrap: str, topics: Sequence[str], prefixes: Sequence[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.prefixes = [p.encode() for p in prefixes]
        self.records: dict[bytes, list[Output]] = {p: [] for p in self.prefixes}
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self.consumer.start()
        tps = [tp for topic in self.topics for tp in await partitions_of(self.consumer, topic)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        self.task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp, messages in batches.items():
                for m in messages:
                    key = m.key or b""
                    for p in self.prefixes:
                        if key.startswith(p):
                            self.records[p].append((tp.topic, key, m.timestamp, m.value))
                            break

    def count(self, prefix: str) -> int:
        return len(self.records[prefix.encode()])

    def get(self, prefix: str) -> list[Output]:
        return self.records[prefix.encode()]

    async def stop(self) -> None:
        await cancel(self.task)
        if self.consumer is not None:
            await self.consumer.stop()


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait until it is done."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
