"""Topic administration: create the processor's topics, check their partition counts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from processor.settings import Settings
from processor.topology import client_options, copartitioned, topic_names

_TOPIC_EXISTS = 36
_METADATA_WAIT_SECONDS = 10.0


class TopicsError(RuntimeError):
    """The broker would not create or describe the processor's topics."""


class PartitionMismatch(RuntimeError):
    """A topic partitioned like the tables' state has another partition count than
    SLA_TOPIC_PARTITIONS: the worker must not start (or go on) with it."""

    EXIT_CODE: Final = 3


def mismatches(expected: int, counts: Mapping[str, int | None]) -> list[str]:
    """'<topic> has N partitions' for each topic whose count differs. None or 0: not known yet
    (a topic Faust creates at start, or one whose metadata a broker just restarted has not
    served yet; Kafka has no topic of no partitions)."""
    return [
        f"{name} has {found} partitions"
        for name, found in counts.items()
        if found and found != expected
    ]


def mismatch_error(expected: int, found: list[str]) -> PartitionMismatch:
    return PartitionMismatch(
        f"{'; '.join(found)}; SLA_TOPIC_PARTITIONS is {expected}. The tables' state is "
        "partitioned like the topics the worker reads and their changelogs: each must have "
        "exactly that many partitions, for life (docs/operations.md, choosing the partition count)"
    )


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
                raise TopicsError(f"cannot create topic {name}: error code {code}")
        counts = {t["topic"]: len(t["partitions"]) for t in await _described(admin, names)}
        found = mismatches(settings.topic_partitions, counts)
        if found:
            raise mismatch_error(settings.topic_partitions, found)
        return names
    finally:
        await admin.close()


async def check_partitions(settings: Settings) -> None:
    """Before the worker declares any topic: every co-partitioned topic that exists has
    SLA_TOPIC_PARTITIONS partitions, or PartitionMismatch. (Faust creates the missing internal
    topics with the configured count: started once with a wrong one, it would leave them so.)"""
    existing = await partitions_of(settings, copartitioned(settings))
    counts = {name: len(partitions) for name, partitions in existing.items() if partitions}
    found = mismatches(settings.topic_partitions, counts)
    if found:
        raise mismatch_error(settings.topic_partitions, found)


async def partitions_of(settings: Settings, topics: list[str]) -> dict[str, list[int]]:
    """The partitions of those of `topics` that exist. Only they are described: a metadata
    request naming a missing topic creates it on a broker with auto.create.topics.enable."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [name for name in topics if name in existing]
        described = await admin.describe_topics(names) if names else []
    finally:
        await admin.close()
    return {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described}


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
            raise TopicsError(f"topics not visible in the broker's metadata: {missing}")
        await asyncio.sleep(0.1)
