"""The private parts of Faust and aiokafka the worker reads, in one place.

Each read tolerates the attribute's absence (a changed release) with the answer that costs least:
no position (a tick waits for applied records instead), no committed offset (the lag metric
shows the high watermark), no per-partition database (the table is scanned whole).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def client_assignment(consumer: Any) -> Any | None:
    """aiokafka's assignment of a consumer (positions per partition); None without one."""
    try:
        return consumer._subscription.subscription.assignment
    except AttributeError:
        return None


def position(assignment: Any, tp: Any) -> int | None:
    """The client's fetch position of `tp` in `assignment`: past the records it handed over and
    past any transaction markers and aborted records it skipped; None if it has none."""
    state = assignment.state_value(tp)
    return state.position if state is not None and state.has_valid_position else None


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust last committed for `tp` (kept privately by its consumer)."""
    found: int | None = getattr(consumer, "_committed_offset", {}).get(tp)
    return found


async def restart_fetcher(app: Any) -> None:
    """Start Faust's fetcher service again if it stopped."""
    await app._fetcher.maybe_start()


def rocksdb_items(
    table: Any, partitions: Iterable[int]
) -> Iterator[tuple[int, bytes, bytes]] | None:
    """(partition, key, value) of `partitions` read from their own RocksDB databases; None when
    the table is not kept in RocksDB. The module is compared, not imported: a memory-store worker
    never loads the RocksDB store's module."""
    store: Any = getattr(table, "data", None)
    if type(store).__module__ != "faust.stores.rocksdb":
        return None
    return _rocksdb_items(store, sorted(partitions))


def _rocksdb_items(store: Any, partitions: list[int]) -> Iterator[tuple[int, bytes, bytes]]:
    for partition in partitions:
        db = store._dbs.get(partition)  # none: nothing stored there yet
        if db is not None:
            for key, raw in store._visible_items(db):
                yield partition, key, raw


class LocalStore:
    """A Faust table's own store, read and written by partition without Faust's per-key path
    (`Table.__setitem__` sends a changelog record per write through the producer buffer; the
    stream sends a batch's changelog records itself, `processor.writes`)."""

    def __init__(self, table: Any, store: Any) -> None:
        self.table = table
        self.store = store
        self.changelog: str = table.changelog_topic.get_topic_name()

    def get(self, partition: int, key: bytes) -> bytes | None:
        raise NotImplementedError

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Store `value` under `key` in `partition` (None: remove the key)."""
        raise NotImplementedError

    def persisted(self, topic: str, partition: int, offset: int, in_transaction: bool) -> None:
        """The changelog `offset` the store now holds (RocksDB reads it at start-up)."""


class _MemoryStore(LocalStore):
    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.store.data.get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        if value is None:
            self.store.data.pop(key, None)
        else:
            self.store.data[key] = value


class _RocksDBStore(LocalStore):
    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.store._db_for_partition(partition).get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        db = self.store._db_for_partition(partition)
        if value is None:
            db.delete(key)
            self.store._key_index.pop(key, None)
        else:
            self.store._key_index[key] = partition  # as Faust's own _set: where to look it up
            db.put(key, value)

    def persisted(self, topic: str, partition: int, offset: int, in_transaction: bool) -> None:
        from faust.types import TP

        tp = TP(topic, partition)
        if in_transaction:  # written to disk when the transaction commits, as Faust does
            self.table.app.tables.persist_offset_on_commit(self.store, tp, offset)
        else:
            self.store.set_persisted_offset(tp, offset)


def local_store(table: Any) -> LocalStore | None:
    """The store of a Faust table kept in memory or in RocksDB; None for anything else (a plain
    mapping, a store of another kind, a release whose stores no longer look as expected)."""
    store: Any = getattr(table, "data", None)
    module = type(store).__module__
    if module == "faust.stores.memory" and isinstance(getattr(store, "data", None), dict):
        return _MemoryStore(table, store)
    if module == "faust.stores.rocksdb" and all(
        hasattr(store, name) for name in ("_db_for_partition", "_key_index", "set_persisted_offset")
    ):
        return _RocksDBStore(table, store)
    return None


def kafka_producer(app: Any, transactional_id: str | None) -> Any | None:
    """The aiokafka producer Faust sends through: the partition's transactional producer under
    exactly-once, else its plain one; None when it has none (yet)."""
    producer = getattr(app, "producer", None)
    if transactional_id is None:
        return getattr(producer, "_producer", None)
    return getattr(producer, "_transaction_producers", {}).get(transactional_id)


def set_current_event(event: Any) -> None:
    """Make `event` the one in hand, as Faust's stream iteration does for each record it yields
    (its tables and stores look up the partition of a key through it)."""
    import weakref

    from faust.streams import _current_event

    _current_event.set(weakref.ref(event))
