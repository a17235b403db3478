"""CloudEvents in the Kafka binding's binary mode (attributes in ce_* headers, the value is the
data): the engine's scenario published so gives exactly what `replay` gives for it structured,
re-keyed records included; a content type of neither mode is dead-lettered with its own reason
and the record's headers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from .test_processor_replay_equivalence import HORIZON, replayed, scenario, upstream_key
from .worker_harness import Worker, comparable, consume

Headers = list[tuple[str, bytes]]


def binary(value: bytes) -> tuple[Headers, bytes | None]:
    """A structured event as (ce_* headers and content-type, the data or None)."""
    event: dict[str, Any] = orjson.loads(value)
    data = event.pop("data", None)
    headers = [(f"ce_{name}", str(attribute).encode()) for name, attribute in event.items()]
    if data is None:
        return headers, None
    return [*headers, ("content-type", b"application/json")], orjson.dumps(data)


async def _produce(bootstrap: str, records: list[tuple[str, bytes, bytes | None, Headers]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def test_binary_mode_gives_what_structured_mode_gives(kafka_bootstrap: str, tmp_path: Path) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    tickets = worker.settings.topic_tickets
    topics = {"tickets": tickets, "maintenance": worker.settings.topic_maintenance}
    odd: Headers = [("content-type", b"text/plain"), ("x-upstream", b"crm-7")]
    try:
        base = datetime.now(UTC) + timedelta(seconds=4)
        rows = scenario(base)
        records = []
        for domain, value in rows:
            headers, data = binary(value)
            records.append((topics[domain], upstream_key(value), data, headers))
        records.append((tickets, b"T-ODD", b'{"specversion":"1.0"}', odd))
        asyncio.run(_produce(kafka_bootstrap, records))
        until = base + timedelta(seconds=HORIZON)
        time.sleep(max((until - datetime.now(UTC)).total_seconds(), 0) + 3)
        got = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=5))
        dead = asyncio.run(consume(kafka_bootstrap, [tickets + ".dlq"], seconds=5, expect=2))
    finally:
        worker.stop()

    expected = replayed([value for _, value in rows], until)
    kafka = [comparable(r.value) for r in got]
    in_horizon = [
        e for e in kafka if datetime.fromisoformat(e["time"].replace("Z", "+00:00")) <= until
    ]
    key = lambda e: (e["time"], e["subject"], e["type"], e["id"])  # noqa: E731
    assert sorted(in_horizon, key=key) == sorted(expected, key=key)
    assert len(expected) > 10
    reasons = sorted(dict(r.headers)["sla-error-reason"] for r in dead)
    assert reasons == [b"unknown_ticket", b"unsupported_content_type"]
    for record in dead:
        headers = dict(record.headers)
        if headers["sla-error-reason"] == b"unsupported_content_type":
            assert (headers["content-type"], headers["x-upstream"]) == (b"text/plain", b"crm-7")
            assert record.value == b'{"specversion":"1.0"}'
        else:  # a binary-mode record keeps its attributes, re-keyed or not
            assert headers["ce_subject"] == b"T-NEVER-OPENED"
            assert headers["ce_type"] == b"ticket.updated"
