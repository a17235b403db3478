"""Replicas bound to 0.0.0.0 (as in a container) answer queries for each other's tickets: each
advertises an address the others can reach (SLA_WEB_ADVERTISED_HOST, or the address it reaches
the broker from), never the wildcard it binds."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from processor.partitioning import partition_of

from .worker_harness import Worker, at, event, produce_to

PARTITIONS = 4


async def _member_urls(bootstrap: str, group: str) -> set[str]:
    """The web addresses the group's members gave Faust's assignor (in their metadata)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        node = await admin.find_coordinator(group)
        [described] = await admin.describe_consumer_groups([group], group_coordinator_id=node)
    finally:
        await admin.close()
    found = set()
    for group_info in described.to_object()["groups"]:
        for member in group_info["members"]:
            found |= {
                m.decode() for m in re.findall(rb"http://[^\"\\]+", member["member_metadata"])
            }
    return found


def test_replicas_bound_to_the_wildcard_answer_each_others_tickets(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    first = Worker(kafka_bootstrap, tmp_path / "first", overrides={"SLA_WEB_HOST": "0.0.0.0"})
    second = Worker(
        kafka_bootstrap,
        tmp_path / "second",
        overrides={"SLA_WEB_HOST": "0.0.0.0", "SLA_WEB_ADVERTISED_HOST": "127.0.0.3"},
        run=first.run,
    )
    first.create_topics()
    base = datetime.now(UTC)
    subjects = [f"R-{n:02d}" for n in range(16)]
    assert {partition_of(s, PARTITIONS) for s in subjects} == set(range(PARTITIONS))
    tickets = first.settings.topic_tickets
    data = {"customer_id": "c", "support_tier": "premium", "severity": "low"}
    try:
        first.start()
        second.start()
        records = [(tickets, partition_of(s, PARTITIONS), s.encode(),
                    event(f"{s}-1", "ticket.opened", at(base, 0), s, data)) for s in subjects]  # fmt: skip
        asyncio.run(produce_to(kafka_bootstrap, records))
        deadline = time.monotonic() + 60
        answers: dict[tuple[str, str], tuple[int, bytes]] = {}
        while time.monotonic() < deadline:
            answers = {(w, s): worker.get(f"/tickets/{s}") for w, worker in
                       (("first", first), ("second", second)) for s in subjects}  # fmt: skip
            if all(code == 200 for code, _ in answers.values()):
                break
            time.sleep(0.5)
        urls = asyncio.run(_member_urls(kafka_bootstrap, first.settings.app_id))
    finally:
        second.stop()
        first.stop()
    assert urls == {
        f"http://127.0.0.1:{first.env['SLA_WEB_PORT']}",
        f"http://127.0.0.3:{second.env['SLA_WEB_PORT']}",
    }
    codes = {key: code for key, (code, _) in answers.items()}
    assert codes == dict.fromkeys(codes, 200), codes
    for (_, subject), (_, body) in answers.items():
        assert orjson.loads(body)["ticket_id"] == subject
    # Both own some partitions: half the answers were forwarded to the other replica.
    for worker in (first, second):
        assert "deadline indexes rebuilt" in worker.log.read_text()
