"""A notification service for the SLA processor's outputs, small enough to copy.

It consumes the escalation and breach topics in a consumer group, reading committed records
only (`read_committed`: under exactly-once the processor's aborted writes are skipped), and
turns each escalation action (route, engage, notify a role) and each breach into a message.

Outputs may come twice (at-least-once delivery, a consumer restarted before it committed, a
topic read again): every output has a deterministic `id`, and this service remembers the ids
it handled in a SQLite file that survives restarts, for `NOTIFIER_KEEP_DAYS` (8: longer than
any redelivery). It records an id and commits its offset only after the message went out; a
crash in between sends that message again, once, which a sink should accept by id (the
webhook stub gets the id as its idempotency key).

Settings (environment): NOTIFIER_BOOTSTRAP (127.0.0.1:9092), NOTIFIER_GROUP (notifier),
NOTIFIER_TOPICS (sla.escalations,sla.breaches), NOTIFIER_STORE (notifier.sqlite3),
NOTIFIER_KEEP_DAYS (8), NOTIFIER_WEBHOOK (unset: messages go to stdout as JSON lines).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer


class SeenIds:
    """Output ids already handled, kept for `keep_seconds`; a file, so it survives restarts."""

    def __init__(self, path: str, keep_seconds: float) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at REAL)")
        self.keep = keep_seconds

    def __contains__(self, output_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM seen WHERE id = ?", (output_id,)).fetchone() is not None
        )

    def add(self, output_id: str) -> None:
        with self.db:  # one transaction
            self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (output_id, time.time()))

    def expire(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM seen WHERE at < ?", (time.time() - self.keep,))


def messages(event: dict[str, Any]) -> list[dict[str, Any]]:
    """What to tell whom: one message per escalation action, one per breach."""
    data = event["data"]
    ticket = f"ticket {data['ticket_id']} ({data['severity']}, {data['support_tier']})"
    if event["type"] == "sla.escalation":
        return [
            {"id": event["id"], "to": action["role"], "action": action["action"],
             "text": f"{action['action']} {action['role']}: {ticket}, escalation step "
                     f"{data['step']} due at {event['time']}"}
            for action in data["actions"]
        ]  # fmt: skip
    if event["type"] == "sla.breach":
        return [{"id": event["id"], "to": "support_manager", "action": "notify",
                 "text": f"breach: {ticket} missed its initial response, due at {data['due_at']}"}]  # fmt: skip
    return []


def deliver(message: dict[str, Any]) -> None:
    """The sink: stdout, or a webhook stub (a real one would POST with the id as its
    idempotency key)."""
    webhook = os.environ.get("NOTIFIER_WEBHOOK")
    line = json.dumps({**message, **({"webhook": webhook} if webhook else {})})
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run() -> None:
    env = os.environ.get
    seen = SeenIds(env("NOTIFIER_STORE", "notifier.sqlite3"),
                   float(env("NOTIFIER_KEEP_DAYS", "8")) * 86400)  # fmt: skip
    consumer = AIOKafkaConsumer(
        *env("NOTIFIER_TOPICS", "sla.escalations,sla.breaches").split(","),
        bootstrap_servers=env("NOTIFIER_BOOTSTRAP", "127.0.0.1:9092"),
        group_id=env("NOTIFIER_GROUP", "notifier"),
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stopping.set)
    await consumer.start()
    sys.stderr.write("notifier: started\n")
    expired = 0.0
    try:
        while not stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                        output_id, todo = event["id"], messages(event)
                    except (TypeError, ValueError, KeyError) as exc:  # not an output: skip it
                        sys.stderr.write(f"notifier: record {record.topic}/{record.partition}/"
                                         f"{record.offset} skipped: {type(exc).__name__}\n")  # fmt: skip
                        continue
                    if output_id in seen:
                        continue  # delivered before: a redelivery
                    for message in todo:
                        deliver(message)
                    seen.add(output_id)
            if batches:
                await consumer.commit()
            if time.monotonic() - expired > 60:
                seen.expire()
                expired = time.monotonic()
    finally:
        await consumer.stop()
        sys.stderr.write("notifier: stopped\n")


if __name__ == "__main__":
    asyncio.run(run())
