"""Topic administration: create the processor's topics, check their partition counts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from processor.settings import Settings
from processor.topology import client_options, topic_names

_TOPIC_EXISTS = 36
_METADATA_WAIT_SECONDS = 10.0


async def create_topics(settings: Settings) -> list[str]:
    """Create the processor's topics if missing; existing ones must have the configured partitions."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = topic_names(settings)
        wanted = [
            NewTopic(n, settings.topic_partitions, settings.topic_replication_factor) for n in names
        ]
        response = await admin.create_topics(wanted)
        for name, code, *_ in response.topic_errors:
            if code not in (0, _TOPIC_EXISTS):
                raise RuntimeError(f"cannot create topic {name}: error code {code}")
        for topic in await _described(admin, names):
            found = len(topic["partitions"])
            if found != settings.topic_partitions:
                raise RuntimeError(
                    f"topic {topic['topic']} has {found} partitions, SLA_TOPIC_PARTITIONS is "
                    f"{settings.topic_partitions}: state must be co-partitioned with its inputs"
                )
        return names
    finally:
        await admin.close()


async def _described(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """Topic descriptions, once the broker's metadata shows every topic just created.

    CreateTopics returns before the new topics reach the broker's metadata cache: described at
    once, one may still be unknown, or listed with no partitions.
    """
    deadline = time.monotonic() + _METADATA_WAIT_SECONDS
    while True:
        topics: list[dict[str, Any]] = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] for t in topics):
            return topics
        if time.monotonic() > deadline:
            missing = [t["topic"] for t in topics if t["error_code"] or not t["partitions"]]
            raise RuntimeError(f"topics not visible in the broker's metadata: {missing}")
        await asyncio.sleep(0.1)
