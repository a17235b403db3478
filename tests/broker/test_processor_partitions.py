"""A topic partitioned otherwise than SLA_TOPIC_PARTITIONS: the worker refuses to start, or
stops when one is expanded under it, with exit code 3 and nothing of it processed or committed;
it never runs on, losing every ticket's state at the table write."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from processor.partitioning import partition_of
from processor.topics import PartitionMismatch

from .helpers import create_topics
from .worker_harness import Worker, at, consume, event, produce_to

EXIT = PartitionMismatch.EXIT_CODE


async def _expand(bootstrap: str, topic: str, total: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=total)})
    finally:
        await admin.close()


async def _existing(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.items()
        if tp.topic == topic and tp.partition < partitions
    }


def _offsets(worker: Worker) -> dict[int, int]:
    """The worker's committed offsets on its tickets topic, by partition."""
    settings = worker.settings
    return asyncio.run(_committed(worker.bootstrap, settings.app_id, settings.topic_tickets, 4))


def _wait_exit(worker: Worker, timeout: float) -> int | None:
    assert worker.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = worker.process.poll()
        if code is not None:
            return code
        time.sleep(0.2)
    return None


@pytest.mark.parametrize("which", ["input", "internal"])
def test_worker_refuses_to_start_on_a_topic_with_another_partition_count(
    kafka_bootstrap: str, tmp_path: Path, which: str
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker", overrides={"SLA_TOPIC_PARTITIONS": "4"})
    settings = worker.settings
    odd = settings.topic_tickets if which == "input" else f"{settings.app_id}-ticks"
    asyncio.run(create_topics(kafka_bootstrap, {odd: 3}))
    worker.child.start()
    code = _wait_exit(worker, 60)
    if code is None:
        worker.stop()
    assert code == EXIT, worker.tail()
    log = worker.log.read_text()
    assert "partition counts differ: not starting" in log
    assert f"{odd} has 3 partitions; SLA_TOPIC_PARTITIONS is 4" in log
    assert "Traceback" not in log
    # Refused before Faust declared anything: no internal topic left with the wrong count.
    created = asyncio.run(_existing(kafka_bootstrap)) & {
        f"{settings.app_id}-rekeyed",
        f"{settings.app_id}-ticks",
        f"{settings.app_id}-tickets-changelog",
    }
    assert created == ({odd} if which == "internal" else set())


def test_worker_stops_when_an_input_topic_is_expanded_under_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = Worker(
        kafka_bootstrap,
        tmp_path / "worker",
        overrides={"SLA_TOPIC_PARTITIONS": "3", "SLA_METADATA_MAX_AGE_SECONDS": "2"},
    )
    settings = worker.settings
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    tickets = settings.topic_tickets

    def opened(subject: str, n: int) -> bytes:
        data = {"customer_id": "c", "support_tier": "premium", "severity": "urgent"}
        return event(f"o-{subject}", "ticket.opened", at(base, n), subject, data)

    try:
        before = [(tickets, partition_of(f"B-{n}", 3), f"B-{n}".encode(), opened(f"B-{n}", n))
                  for n in range(6)]  # fmt: skip
        asyncio.run(produce_to(kafka_bootstrap, before))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            worker.get(f"/tickets/B-{n}")[0] == 200 for n in range(6)
        ):
            time.sleep(0.2)
        assert all(worker.get(f"/tickets/B-{n}")[0] == 200 for n in range(6)), worker.tail()
        while time.monotonic() < deadline and sum(_offsets(worker).values()) < len(before):
            time.sleep(0.5)
        assert sum(_offsets(worker).values()) == len(before)  # committed, every 2.8 s

        asyncio.run(_expand(kafka_bootstrap, tickets, 4))
        # An upstream that sees the new partition writes to it.
        after = [(tickets, 3, b"A-1", opened("A-1", 10))]
        asyncio.run(produce_to(kafka_bootstrap, after))
        code = _wait_exit(worker, 60)
    finally:
        if worker.process is not None and worker.process.poll() is None:
            worker.stop()
    assert code == EXIT, worker.tail()
    log = worker.log.read_text()
    assert "partition counts differ: stopping" in log
    assert f"{tickets} has 4 partitions; SLA_TOPIC_PARTITIONS is 3" in log
    # Nothing of the new partition was processed, nor committed: it waits for the operator.
    committed = _offsets(worker)
    assert committed.get(3, -1) == -1, committed
    outputs = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=3))
    assert not [r for r in outputs if r.key == b"A-1"]
    assert sum(committed.values()) == len(before), committed
    # A restart is refused too, at once.
    worker.child.start()
    assert _wait_exit(worker, 60) == EXIT, worker.tail()
