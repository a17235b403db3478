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
