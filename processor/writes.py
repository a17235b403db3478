"""A batch's table writes: applied to the local store at once, sent to the changelogs together.

Faust's own table write (`table[key] = value`) costs a changelog record's whole path per key: a
future, the producer buffer, a task's turn, the producer's `send`, a callback. Here a write goes
to the table's store at once (what the rest of the batch reads) and its changelog record waits
in `staged`, the last value per key; `flush`, at the end of the batch and before its records
are acknowledged, sends each changelog partition's records as record batches through the
producer of that partition's unit of work (its transaction under exactly-once). The commit that
follows flushes the producer, so offsets are committed only with the writes they imply, as
with Faust's path.

A table without a known store (a plain mapping in the tests, a Faust release whose stores look
different) is written through its own `__setitem__` and `pop`, Faust's path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from processor.faust_fixes.internals import LocalStore, kafka_producer, local_store
from processor.topology import Table

log = logging.getLogger(__name__)

# (changelog topic, key) -> (partition, value or None for a tombstone), in order of writing.
Staged = dict[tuple[str, bytes], tuple[int, bytes | None]]


class Writes:
    """The table writes of the batch in hand, and how they reach the changelogs."""

    def __init__(
        self,
        app: Any,
        transactional_id: Callable[[int], str | None],
        in_transaction: bool,
    ) -> None:
        self._app = app
        self._transactional_id = transactional_id
        self._in_transaction = in_transaction
        self._stores: dict[int, LocalStore | None] = {}
        self._by_changelog: dict[str, LocalStore] = {}
        self.staged: Staged = {}

    def store_of(self, table: Table) -> LocalStore | None:
        found = self._stores.get(id(table), False)
        if found is False:
            found = self._stores[id(table)] = local_store(table)
            if found is not None:
                self._by_changelog[found.changelog] = found
        return found  # type: ignore[return-value]

    def get(self, table: Table, partition: int, key: bytes) -> bytes | None:
        store = self.store_of(table)
        return table.get(key) if store is None else store.get(partition, key)

    def put(self, table: Table, partition: int, key: bytes, value: bytes | None) -> None:
        """Write (None: remove) `key` of `partition`; its changelog record goes with the batch."""
        store = self.store_of(table)
        if store is None:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
            return
        store.put(partition, key, value)
        staged = self.staged
        slot = (store.changelog, key)
        staged.pop(slot, None)  # a key written again goes last, with its latest value
        staged[slot] = (partition, value)

    def discard(self) -> None:
        """Forget the staged changelog records (the batch was abandoned)."""
        self.staged = {}

    async def flush(self) -> int:
        """Send the staged changelog records, as record batches per changelog partition; the
        number of records sent."""
        staged, self.staged = self.staged, {}
        if not staged:
            return 0
        partitions: dict[tuple[str, int], list[tuple[bytes, bytes | None]]] = {}
        for (topic, key), (partition, value) in staged.items():
            partitions.setdefault((topic, partition), []).append((key, value))
        for (topic, partition), records in partitions.items():
            await self._send(topic, partition, records)
        return len(staged)

    async def _send(
        self, topic: str, partition: int, records: list[tuple[bytes, bytes | None]]
    ) -> None:
        transactional_id = self._transactional_id(partition)
        producer = kafka_producer(self._app, transactional_id)
        if producer is None:  # no producer of its own to batch with: one record at a time
            for key, value in records:
                await self._app.producer.send(
                    topic, key, value, partition, None, None, transactional_id=transactional_id
                )
            return
        batch = producer.create_batch()
        count = 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                await self._send_batch(producer, batch, topic, partition, count)
                batch, count = producer.create_batch(), 0
                batch.append(key=key, value=value, timestamp=None)  # the first always fits
            count += 1
        await self._send_batch(producer, batch, topic, partition, count)

    async def _send_batch(
        self, producer: Any, batch: Any, topic: str, partition: int, count: int
    ) -> None:
        sent: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
        store = self._by_changelog.get(topic)
        if store is None:
            return
        in_transaction = self._in_transaction

        def persisted(done: asyncio.Future[Any]) -> None:
            # A batch that failed leaves the store's offset where it was, as Faust's callback
            # does: a restart reads the changelog from there.
            if done.cancelled():
                return
            if done.exception() is not None:
                log.warning("changelog batch not delivered", extra={"topic": topic,
                    "partition": partition, "records": count,
                    "error": type(done.exception()).__name__})  # fmt: skip
                return
            if done.result() is None:
                return
            store.persisted(topic, partition, done.result().offset + count - 1, in_transaction)

        sent.add_done_callback(persisted)
