"""End offsets for firing decisions, asked from the worker's own event loop.

Every tick waits for the end offsets of its partition's inputs (processor.sla.firing), so how
fast they come back is timer lateness. Faust's consumer runs on a thread of its own: a request
handed to it waited there behind fetch handling (4.6 ms median, 15 ms p99 at 1,000 events/s and
830 deadlines/s on the 2-core benchmark host, against 1.5 ms and 4.7 ms from here; see
bench/results/timers-rule-2026-12-02/). So a client of its own, without a consumer group, asks
them: same brokers, credentials and isolation level as the worker's consumer (under
exactly-once the last stable offsets, as the worker reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

Source = tuple[str, int]


class EndOffsets:
    """A group-less client, started on first use; closed for good with the worker."""

    def __init__(self, servers: str, credentials: Any, read_committed: bool) -> None:
        self._servers = [s.strip() for s in servers.removeprefix("kafka://").split(",")]
        self._auth = dict(credentials_to_aiokafka_auth(credentials))
        self._isolation = "read_committed" if read_committed else "read_uncommitted"
        self._client: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()
        self._closed = False

    async def ask(self, sources: Iterable[Source]) -> dict[Source, int]:
        client = await self._started()
        tps = [TopicPartition(topic, partition) for topic, partition in sources]
        try:
            found = await client.end_offsets(tps)
        except Exception:
            await self._discard(client)  # a fresh client next time, not one in a bad state
            raise
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    async def _started(self) -> AIOKafkaConsumer:
        async with self._starting:
            if self._closed:
                raise RuntimeError("the end offsets client is closed")
            if self._client is None:
                client = AIOKafkaConsumer(
                    bootstrap_servers=self._servers,
                    client_id="sla-end-offsets",
                    enable_auto_commit=False,
                    isolation_level=self._isolation,
                    **self._auth,
                )
                try:
                    await client.start()
                except BaseException:
                    await client.stop()
                    raise
                self._client = client
            return self._client

    async def _discard(self, client: AIOKafkaConsumer) -> None:
        async with self._starting:
            if self._client is client:
                self._client = None
        await client.stop()

    async def close(self) -> None:
        async with self._starting:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            await client.stop()
