"""An event that arrives after its partition's timers have fired past its deadlines still gets them.

A late event's *new* deadlines (a ticket opened, or a maintenance scheduled, a few seconds ago)
are already due when it is applied: they fire at the next tick, not skipped as already fired
because the partition's other deadlines fired up to a later instant.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from processor.partitioning import partition_of

from .worker_harness import Worker, at, comparable, consume, event, produce, replayed

PARTITIONS = 4


def same_partition(prefix: str, partition: int) -> str:
    return next(
        f"{prefix}{i}" for i in range(999) if partition_of(f"{prefix}{i}", PARTITIONS) == partition
    )


def test_a_late_event_gets_deadlines_its_partition_fired_past(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    partition = partition_of("LATE-A", PARTITIONS)
    late_ticket, late_maintenance = (
        same_partition("LATE-B", partition),
        same_partition("LM-", partition),
    )
    base = datetime.now(UTC)
    urgent = {"customer_id": "c", "support_tier": "premium", "severity": "urgent"}
    on_time = event("a1", "ticket.opened", at(base, 0), "LATE-A", urgent)
    late = [
        # opened 0.5 s before LATE-A: its breach (at +0.75 s) is behind the watermark
        event("b1", "ticket.opened", at(base, -0.5), late_ticket, urgent),
        # reminder at +0.5 s, also behind it
        event("m1", "maintenance.scheduled", at(base, -0.5), late_maintenance,
              {"kind": "planned", "summary": "s", "window_start": at(base, 120.5),
               "window_end": at(base, 130)}),
    ]  # fmt: skip
    tickets, maintenance = worker.settings.topic_tickets, worker.settings.topic_maintenance
    try:
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"LATE-A", on_time)]))
        fired = asyncio.run(
            consume(kafka_bootstrap, [worker.settings.topic_breaches], seconds=8, expect=1)
        )
        assert len(fired) == 1, "LATE-A's breach did not fire: no watermark to be behind"
        time.sleep(0.5)  # a tick or two more on the partition
        asyncio.run(produce(kafka_bootstrap, [
            (tickets, late_ticket.encode(), late[0]),
            (maintenance, late_maintenance.encode(), late[1]),
        ]))  # fmt: skip
        got = asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=8, expect=7))
    finally:
        worker.stop()

    expected = replayed([on_time, *late], base + timedelta(seconds=3))
    assert Counter((e["subject"], e["type"]) for e in expected) == {
        ("LATE-A", "sla.escalation"): 1, ("LATE-A", "sla.breach"): 1,
        (late_ticket, "sla.escalation"): 1, (late_ticket, "sla.breach"): 1,
        (late_maintenance, "maintenance.notice"): 1,
        (late_maintenance, "maintenance.lead_time_violation"): 1,
        (late_maintenance, "maintenance.reminder"): 1,
    }  # fmt: skip
    outputs = [comparable(r.value) for r in got]
    key = lambda e: (e["time"], e["subject"], e["type"])  # noqa: E731
    assert sorted(outputs, key=key) == sorted(expected, key=key)
    assert len({orjson.loads(r.value)["id"] for r in got}) == len(got)
