"""A broker outage under a running worker: a few log lines, not one per client retry (about 60 a
second before), a metric of the errors, and the worker goes on by itself when the broker is back.

The broker here is the test's own (stopped and started again), not the session's."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson

from .helpers import kafka_sh
from .worker_harness import Worker, at, consume, event, produce

OUTAGE_SECONDS = 20


def _urgent(base: datetime, subject: str) -> bytes:
    data = {"customer_id": "c", "support_tier": "premium", "severity": "urgent"}
    return event(f"{subject}-1", "ticket.opened", at(base, 0), subject, data)


def test_an_outage_is_a_few_lines_and_a_metric(
    own_broker: tuple[str, list[str]], tmp_path: Path
) -> None:
    bootstrap, args = own_broker
    worker = Worker(bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    tickets = worker.settings.topic_tickets
    try:
        asyncio.run(produce(bootstrap, [(tickets, b"O-1", _urgent(datetime.now(UTC), "O-1"))]))
        assert asyncio.run(consume(bootstrap, worker.outputs, seconds=20, expect=1))
        # A connection error while the worker started (a broker still opening its listener)
        # opens an outage that ends after 10 s without one: the one under test must be new.
        unreachable = ("sla_kafka_unreachable_seconds", frozenset())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.metrics()[unreachable] > 0:
            time.sleep(0.5)
        mark = len(worker.log.read_text().splitlines())
        stopped = kafka_sh("stop", *args, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        time.sleep(OUTAGE_SECONDS)
        during = worker.metrics()
        started = kafka_sh("start", *args, timeout=300)
        assert started.returncode == 0, started.stderr
        # The worker reconnects by itself and goes on: a ticket opened after the outage.
        asyncio.run(produce(bootstrap, [(tickets, b"O-2", _urgent(datetime.now(UTC), "O-2"))]))
        outputs = asyncio.run(consume(
            bootstrap, worker.outputs, seconds=60,
            done=lambda got: any(r.key == b"O-2" for r in got),
        ))  # fmt: skip
        # The end is logged once no connection error came for 10 s (the client may still
        # report a few while the group settles after the broker is back).
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline and "broker reachable again" not in worker.log.read_text()
        ):
            time.sleep(0.5)
        after = worker.metrics()
    finally:
        worker.stop()
    assert any(r.key == b"O-2" for r in outputs), worker.tail()
    lines = [orjson.loads(line) for line in worker.log.read_text().splitlines()[mark:]]
    messages = Counter(line["msg"] for line in lines if line["level"] in ("WARNING", "ERROR"))
    # Before: about 60 ERROR lines a second from the client, 1,200 in this outage.
    assert messages["broker unreachable"] == 1, messages
    assert sum(messages.values()) <= 12, messages
    ended = [line for line in lines if line["msg"] == "broker reachable again"]
    assert len(ended) == 1, messages
    assert ended[0]["seconds"] >= OUTAGE_SECONDS - 2
    errors = ("sla_kafka_connection_errors_total", frozenset())
    assert during[errors] >= OUTAGE_SECONDS  # more than one a second while down
    assert during[unreachable] >= OUTAGE_SECONDS - 2
    assert after[unreachable] == 0.0
