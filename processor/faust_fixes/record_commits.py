"""Faust commits in the middle of a record, and without flushing its buffer into a transaction
(split units of work)."""

from __future__ import annotations

from typing import Any

import faust.transport.consumer as faust_consumer


def commit_between_records(consumer_class: Any = faust_consumer.Consumer) -> None:
    """Work round split units of work in faust-streaming 0.15: commits in the middle of a record.

    Faust commits from its own tasks (a timer, `commit_every`, a rebalance), at any `await` of
    the agent. Under exactly-once a commit in the middle of a record commits part of its outputs
    and table writes with the offsets before it; a crash then repeats them (an id committed
    twice), or, with the rest of the record's effects in the next, aborted, transaction, keeps
    some and loses others. And the transaction commit does not flush Faust's producer buffer:
    table writes still queued there went into the *next* transaction, apart from the outputs
    and the offset they belong with. Here a commit waits for the record in hand (the app's
    `sla_record_lock`, held by the stream per record), and under exactly-once flushes the
    buffer into the transaction first. A record's ack runs before the agent asks for the lock
    again, so the committed offsets include every record whose effects are committed.
    """
    if getattr(consumer_class.force_commit, "_between_records", False):
        return
    force_commit = consumer_class.force_commit

    async def force_commit_between_records(self: Any, *args: Any, **kwargs: Any) -> bool:
        lock = getattr(self.app, "sla_record_lock", None)
        if lock is None:
            return bool(await force_commit(self, *args, **kwargs))
        async with lock:
            if self.in_transaction:
                await self.app.producer.buffer.flush()
            return bool(await force_commit(self, *args, **kwargs))

    force_commit_between_records._between_records = True  # type: ignore[attr-defined]
    consumer_class.force_commit = force_commit_between_records
