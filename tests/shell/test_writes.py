"""`processor.writes`: a batch's table writes go to the table's own store at once and to its
changelog as record batches at the flush, the last value of each key only; the store learns
the changelog offset it holds once a batch is acknowledged (RocksDB reads it at start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from processor import topology, writes
from processor.faust_fixes.internals import local_store
from processor.settings import Settings
from processor.writes import Writes


class _Batch:
    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class _Meta:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _Producer:
    """aiokafka's producer as the writes use it: batches, sent to a partition, acknowledged."""

    def __init__(self, room: int = 1000) -> None:
        self.room = room
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []
        self.acks: list[asyncio.Future[Any]] = []

    def create_batch(self) -> _Batch:
        return _Batch(self.room)

    async def send_batch(self, batch: _Batch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.records))
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


def _wired(tmp_path: Path, store: str) -> topology.Topology:
    return topology.build(Settings(store=store, data_dir=tmp_path, topic_partitions=4))


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> _Producer:
    found = _Producer()
    monkeypatch.setattr(writes, "kafka_producer", lambda app, tid: found)
    return found


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_writes_are_read_back_at_once_and_reach_the_changelog_at_the_flush(
    tmp_path: Path, store: str, producer: _Producer
) -> None:
    built = _wired(tmp_path, store)
    w = Writes(built.app, lambda partition: None, in_transaction=False)
    tickets = built.tickets
    w.put(tickets, 1, b"A", b"a1")
    w.put(tickets, 1, b"B", b"b1")
    w.put(tickets, 3, b"C", b"c1")
    w.put(tickets, 1, b"A", b"a2")  # written again: only the last value goes, after B's
    w.put(tickets, 3, b"C", None)  # removed
    assert w.get(tickets, 1, b"A") == b"a2"
    assert w.get(tickets, 1, b"B") == b"b1"
    assert w.get(tickets, 3, b"C") is None
    assert producer.sent == []  # nothing before the flush
    assert await w.flush() == 3
    changelog = tickets.changelog_topic.get_topic_name()
    assert producer.sent == [
        (changelog, 1, [(b"B", b"b1"), (b"A", b"a2")]),
        (changelog, 3, [(b"C", None)]),
    ]
    assert await w.flush() == 0  # sent once
    # What Faust's own read of the table sees (the web views read it so).
    assert tickets.get(b"A") == b"a2"


async def test_a_full_batch_goes_and_the_rest_follows_in_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _Producer(room=2)
    monkeypatch.setattr(writes, "kafka_producer", lambda app, tid: small)
    built = _wired(tmp_path, "memory://")
    w = Writes(built.app, lambda partition: None, in_transaction=False)
    for i in range(5):
        w.put(built.tickets, 0, f"K{i}".encode(), b"v")
    await w.flush()
    assert [len(records) for _, _, records in small.sent] == [2, 2, 1]
    assert [k for _, _, records in small.sent for k, _ in records] == [
        f"K{i}".encode() for i in range(5)
    ]


async def test_rocksdb_learns_the_last_offset_of_each_acknowledged_batch(
    tmp_path: Path, producer: _Producer
) -> None:
    built = _wired(tmp_path, "rocksdb://")
    w = Writes(built.app, lambda partition: None, in_transaction=False)
    for i in range(3):
        w.put(built.tickets, 2, f"K{i}".encode(), b"v")
    await w.flush()
    store: Any = built.tickets.data
    changelog = built.tickets.changelog_topic.get_topic_name()
    assert store.persisted_offset(TP(changelog, 2)) is None  # not before the acknowledgement
    producer.acks[0].set_result(_Meta(offset=40))
    await asyncio.sleep(0)
    assert store.persisted_offset(TP(changelog, 2)) == 42


async def test_a_failed_batch_leaves_the_stored_offset_where_it_was_and_is_logged(
    tmp_path: Path, producer: _Producer, caplog: pytest.LogCaptureFixture
) -> None:
    built = _wired(tmp_path, "rocksdb://")
    w = Writes(built.app, lambda partition: None, in_transaction=False)
    w.put(built.tickets, 0, b"K", b"v")
    await w.flush()
    producer.acks[0].set_exception(RuntimeError("broker gone"))
    await asyncio.sleep(0)
    [warned] = [r for r in caplog.records if r.getMessage() == "changelog batch not delivered"]
    assert (vars(warned)["partition"], vars(warned)["records"]) == (0, 1)
    changelog = built.tickets.changelog_topic.get_topic_name()
    assert built.tickets.data.persisted_offset(TP(changelog, 0)) is None  # type: ignore[attr-defined]


async def test_under_exactly_once_the_offset_waits_for_the_commit_and_the_partition_s_producer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str | None] = []
    found = _Producer()

    def by_id(app: Any, transactional_id: str | None) -> _Producer:
        asked.append(transactional_id)
        return found

    monkeypatch.setattr(writes, "kafka_producer", by_id)
    built = _wired(tmp_path, "rocksdb://")
    pending: list[tuple[Any, TP, int]] = []
    monkeypatch.setattr(
        built.app.tables, "persist_offset_on_commit", lambda s, tp, o: pending.append((s, tp, o))
    )
    w = Writes(built.app, lambda partition: f"txn-{partition}", in_transaction=True)
    w.put(built.tickets, 3, b"K", b"v")
    await w.flush()
    found.acks[0].set_result(_Meta(offset=7))
    await asyncio.sleep(0)
    changelog = built.tickets.changelog_topic.get_topic_name()
    assert asked == ["txn-3"]
    assert pending == [(built.tickets.data, TP(changelog, 3), 7)]
    assert built.tickets.data.persisted_offset(TP(changelog, 3)) is None  # type: ignore[attr-defined]


def test_a_plain_mapping_is_no_store_and_is_written_through_its_own_methods() -> None:
    table: dict[bytes, bytes] = {}
    assert local_store(table) is None
    w = Writes(None, lambda partition: None, in_transaction=False)
    w.put(table, 0, b"K", b"v")
    assert table == {b"K": b"v"}
    assert w.staged == {}
    w.put(table, 0, b"K", None)
    assert table == {}


async def test_an_abandoned_batch_sends_nothing(tmp_path: Path, producer: _Producer) -> None:
    built = _wired(tmp_path, "memory://")
    w = Writes(built.app, lambda partition: None, in_transaction=False)
    w.put(built.tickets, 0, b"K", b"v")
    w.discard()
    assert await w.flush() == 0
    assert producer.sent == []
