"""`faust_fixes.recovery_highwaters` against the real broker: the highwaters an exactly-once
recovery replays its changelogs up to, asked of a read_committed client that has not fetched yet
(as a worker's client right after an assignment)."""

from __future__ import annotations

import asyncio
import types
import uuid

import faust.transport.drivers.aiokafka as faust_aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from processor.faust_fixes.recovery_highwaters import ask_the_broker_for_highwaters


async def test_an_unfetched_changelog_has_its_committed_end_as_highwater(
    kafka_bootstrap: str,
) -> None:
    topic = f"highwaters-{uuid.uuid4().hex[:8]}-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    writer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-tx")
    await writer.start()
    try:
        async with writer.transaction():  # committed: 3 records and the commit marker
            for _ in range(3):
                await writer.send_and_wait(topic, b"state", key=b"k", partition=0)
        await writer.begin_transaction()  # aborted: 2 records and the abort marker
        for _ in range(2):
            await writer.send_and_wait(topic, b"state", key=b"k", partition=0)
        await writer.abort_transaction()
    finally:
        await writer.stop()

    client = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await client.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        client.assign(tps)
        client.pause(*tps)  # nothing fetched: no cached last stable offset
        thread_class = type("Thread", (faust_aiokafka.AIOKafkaConsumerThread,), {})
        ask_the_broker_for_highwaters(thread_class)
        thread = thread_class.__new__(thread_class)
        thread._ensure_consumer = lambda: client
        thread.consumer = types.SimpleNamespace(in_transaction=True)

        faust_highwaters = thread_class._highwaters.__wrapped__
        assert await faust_highwaters(thread, tps) == {tps[0]: None, tps[1]: None}  # the defect

        asked = await thread._highwaters(tps)
        for _ in range(50):  # the coordinator writes the markers after the commit returns
            if asked[tps[0]] == 7:
                break
            await asyncio.sleep(0.1)
            asked = await thread._highwaters(tps)
        # The end of what read_committed reads: past the committed records, the aborted ones
        # and both markers (offsets 0-6); recovery replays up to it, the aborted ones skipped.
        assert asked == {tps[0]: 7, tps[1]: 0}
    finally:
        await client.stop()
