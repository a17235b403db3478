"""`processor.end_offsets.EndOffsets` against the real broker: the ends a firing decision waits
for, as the worker's consumer reads them (under exactly-once, the last stable offsets)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from processor.end_offsets import EndOffsets

from .helpers import create_topics


async def test_end_offsets_as_each_isolation_level_reads_them(kafka_bootstrap: str) -> None:
    topic = f"end-offsets-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, {topic: 2})
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    transactional = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic}-tx"
    )
    uncommitted = EndOffsets(kafka_bootstrap, None, read_committed=False)
    committed = EndOffsets(f"kafka://{kafka_bootstrap}", None, read_committed=True)
    sources = [(topic, 0), (topic, 1)]
    await plain.start()
    await transactional.start()
    try:
        assert await committed.ask(sources) == {(topic, 0): 0, (topic, 1): 0}
        for _ in range(3):
            await plain.send_and_wait(topic, b"v", partition=0)
        async with transactional.transaction():
            for _ in range(2):
                await transactional.send_and_wait(topic, b"v", partition=1)
            # Open: visible to read_uncommitted, not yet to read_committed.
            assert await uncommitted.ask(sources) == {(topic, 0): 3, (topic, 1): 2}
            assert await committed.ask(sources) == {(topic, 0): 3, (topic, 1): 0}
        # Committed: past the two records and the commit marker, once the coordinator wrote it
        # (after the commit returns).
        ends = await committed.ask(sources)
        for _ in range(100):
            if ends[(topic, 1)]:
                break
            await asyncio.sleep(0.1)
            ends = await committed.ask(sources)
        assert ends == {(topic, 0): 3, (topic, 1): 3}
        await committed.close()  # for good: the worker is stopping
        with pytest.raises(RuntimeError, match="closed"):
            await committed.ask([(topic, 1)])
    finally:
        await plain.stop()
        await transactional.stop()
        await uncommitted.close()
        await committed.close()
