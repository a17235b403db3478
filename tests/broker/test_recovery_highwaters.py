"""`faust_fixes.recovery_highwaters` against the real broker: the highwaters an exactly-once
recovery replays its changelogs up to, asked of a read_committed client that has not fetched yet
(as a worker's client right after an assignment)."""

from __future__ import annotations

import asyncio
import types
import uuid

import faust.transport.drivers.aiokafka as faust_aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from faust.types import TP

from processor.faust_fixes.recovery_highwaters import ask_the_broker_for_highwaters

from .helpers import create_topics


async def test_an_unfetched_changelog_has_its_committed_end_as_highwater(
    kafka_bootstrap: str,
) -> None:
    topic = f"highwaters-{uuid.uuid4().hex[:8]}-changelog"
    await create_topics(kafka_bootstrap, {topic: 2})
    writer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-tx")
    await writer.start()
    client = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await client.start()
    try:
        async with writer.transaction():  # committed: 3 records and the commit marker
            for _ in range(3):
                await writer.send_and_wait(topic, b"state", key=b"k", partition=0)
        await writer.begin_transaction()  # aborted: 2 records and the abort marker
        for _ in range(2):
            await writer.send_and_wait(topic, b"state", key=b"k", partition=0)
        await writer.abort_transaction()
        # Open while asked: 2 records on partition 1 that read_committed does not reach yet.
        await writer.begin_transaction()
        for _ in range(2):
            await writer.send_and_wait(topic, b"state", key=b"k", partition=1)

        # Faust's TPs, as recovery asks; the client is assigned aiokafka's.
        tps = [TP(topic, 0), TP(topic, 1)]
        client.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        client.pause(*client.assignment())  # nothing fetched: no cached last stable offset
        thread_class = type("Thread", (faust_aiokafka.AIOKafkaConsumerThread,), {})
        ask_the_broker_for_highwaters(thread_class)
        thread = thread_class.__new__(thread_class)
        thread._ensure_consumer = lambda: client
        thread.consumer = types.SimpleNamespace(in_transaction=True)

        faust_highwaters = thread_class._highwaters.__wrapped__
        assert await faust_highwaters(thread, tps) == {tps[0]: None, tps[1]: None}  # the defect

        asked = await thread._highwaters(tps)
        for _ in range(100):  # the coordinator writes the markers after the commit returns
            if asked[tps[0]] == 7:
                break
            await asyncio.sleep(0.1)
            asked = await thread._highwaters(tps)
        # The end of what read_committed reads: on partition 0 past the committed records, the
        # aborted ones and both markers (offsets 0-6), recovery skipping the aborted ones; on
        # partition 1 the start of the open transaction (read_uncommitted would say 2).
        assert asked == {tps[0]: 7, tps[1]: 0}
        await writer.commit_transaction()
    finally:
        await writer.stop()
        await client.stop()
