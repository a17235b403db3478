"""`SlaStream.rebuild` without Kafka: deadline indexes rebuilt from stored states.

A state stored under the current policy carries its next deadline, and the rebuild reads that
instead of decoding the state. Whatever it cannot trust (another policy, a value an earlier
release wrote) is decoded, and must come out the same as before; an earlier release's value is
first advanced through the fired watermark that release stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from processor import codec, topology
from processor.instants import epoch
from processor.metrics import Metrics
from processor.partitioning import partition_of
from processor.settings import Settings
from processor.sla import engine
from processor.sla.maintenance import Maintenance
from processor.stream import SlaStream
from tests.shell import test_codec
from tests.shell.test_stream_ticks import BREACH, OPENED, POLICY, a_stream, opened, stored, wired

TICKETS = 40


def contents(sla: SlaStream, partition: int = 0) -> dict[str, float | None]:
    index = sla.deadlines.partitions[partition].index
    return {f"B-{i:03d}": index.due_of(f"t:B-{i:03d}") for i in range(TICKETS)}


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    seen: list[bytes] = []
    decode = codec.decode_stored

    def counting(raw: bytes) -> tuple[engine.State, int]:
        seen.append(raw)
        return decode(raw)

    monkeypatch.setattr(codec, "decode_stored", counting)
    return seen


def restore(sla: SlaStream, values: dict[bytes, bytes], watermark: int | None = None) -> None:
    """Forget partition 0 and rebuild it from `values` (and a stored watermark)."""
    sla.release({0})
    wired(sla).tickets.clear()
    wired(sla).tickets.update(values)
    wired(sla).watermarks.clear()
    if watermark is not None:
        wired(sla).watermarks[b"0"] = str(watermark).encode()
    sla.rebuild({0})


def test_stored_deadlines_are_read_without_decoding(decodes: list[bytes]) -> None:
    sla, _, _ = a_stream(tickets=TICKETS)
    assert decodes == []
    assert set(contents(sla).values()) == {epoch(BREACH)}  # high, premium: the response target
    assert sla.states.open_tickets[0] == {("high", "premium"): TICKETS}


def reencoded(values: dict[bytes, bytes], how: str) -> dict[bytes, bytes]:
    out = {}
    for key, raw in values.items():
        kind, _, _, due, *fields = orjson.loads(raw)
        if how == "another policy":
            out[key] = orjson.dumps([kind, codec.VERSION, "0123456789ab", due, *fields])
        else:
            out[key] = orjson.dumps([kind, 1, *fields[: codec._LAYOUTS[kind].older]])
    return out


@pytest.mark.parametrize("how", ["another policy", "version 1"])
def test_states_it_cannot_trust_are_decoded_to_the_same_index(
    how: str, decodes: list[bytes]
) -> None:
    sla, _, _ = a_stream(tickets=TICKETS)
    trusted, counts = contents(sla), dict(sla.states.open_tickets[0])
    values = dict(wired(sla).tickets)
    restore(sla, reencoded(values, how))
    assert len(decodes) == TICKETS
    assert contents(sla) == trusted
    assert sla.states.open_tickets[0] == counts


def version_2(raw: bytes) -> bytes:
    """The same value as an earlier release wrote it (version 2: the fields up to `seen_ids`)."""
    kind, _, policy, due, *fields = orjson.loads(raw)
    return orjson.dumps([kind, 2, policy, due, *fields[: codec._LAYOUTS[kind].older]])


def test_an_earlier_release_s_states_are_advanced_through_its_watermark(
    decodes: list[bytes],
) -> None:
    """That release's ticks fired the breach (its watermark is past it) without storing the
    state: the index must hold each ticket's next deadline after the watermark, the second
    escalation step. A state this version stored is self-describing: the watermark is not
    applied to it, and it is not decoded."""
    sla, _, _ = a_stream(tickets=TICKETS)
    values = {k: version_2(v) for k, v in wired(sla).tickets.items()}
    values[b"B-000"] = stored(opened("B-000"))  # written by this version
    mark = BREACH + timedelta(seconds=1)
    restore(sla, values, watermark=int(epoch(mark) * 1_000_000))
    assert len(decodes) == TICKETS - 1
    found = contents(sla)
    expected = engine.advance(opened("B-001"), mark, POLICY).next_deadline
    assert expected is not None
    assert epoch(expected) > epoch(mark)
    assert {found[f"B-{i:03d}"] for i in range(1, TICKETS)} == {epoch(expected)}
    assert found["B-000"] == epoch(BREACH)


def test_a_corrupt_state_is_skipped_and_the_rest_indexed(caplog: pytest.LogCaptureFixture) -> None:
    sla, _, _ = a_stream(tickets=TICKETS)
    values = dict(wired(sla).tickets)
    values[b"B-003"] = b'["t", 2, "' + POLICY.fingerprint.encode() + b'", "not an instant"]'
    values[b"B-004"] = b"\xff garbage"
    caplog.set_level("ERROR", logger="processor.stream")
    restore(sla, values)
    found = contents(sla)
    assert found["B-003"] is None
    assert found["B-004"] is None
    assert sum(due is not None for due in found.values()) == TICKETS - 2
    assert [r.getMessage() for r in caplog.records] == ["corrupt state skipped"] * 2
    assert sla.states.open_tickets[0] == {("high", "premium"): TICKETS - 2}


def test_rocksdb_partitions_are_read_from_their_own_databases(tmp_path: Path) -> None:
    """With RocksDB only the owned partitions' databases are read (no key is hashed), and
    Faust's offset key in each is not a state."""
    settings = Settings(store="rocksdb://", data_dir=tmp_path, topic_partitions=4)
    built = topology.build(settings)
    store: Any = built.tickets.data
    subjects = [f"R-{i:03d}" for i in range(TICKETS)]
    for subject in subjects:
        db = store._db_for_partition(partition_of(subject, 4))
        db[subject.encode()] = stored(opened(subject))
    for partition in range(4):
        store._db_for_partition(partition)[store.offset_key] = b"123"
    sla = SlaStream(built, POLICY, Metrics(CollectorRegistry()), lambda: OPENED)
    owned = {0, 2}
    sla.rebuild(owned)
    for partition in owned:
        index = sla.deadlines.partitions[partition].index
        mine = [s for s in subjects if partition_of(s, 4) == partition]
        assert mine
        assert len(index) == len(mine)
        assert all(index.due_of(f"t:{s}") == epoch(BREACH) for s in mine)
    assert set(sla.deadlines.partitions) == owned


def _every_state_and_mark() -> Iterator[tuple[engine.State, int | None]]:
    """Each state the codec tests produce, with no watermark, and one before, at and after its
    next deadline."""
    for state in test_codec.ALL:
        yield state, None
        due = engine.next_deadline(state, test_codec.POLICY)
        if due is not None:
            for offset in (-1, 0, 1):
                yield state, int(epoch(due) * 1_000_000) + offset * 1_000_000


@pytest.mark.parametrize(("state", "mark"), list(_every_state_and_mark()))
def test_stored_and_decoded_deadlines_agree_for_every_state(
    state: engine.State, mark: int | None
) -> None:
    """Whatever the state (open, resolved, closed, expiring; ticket or maintenance) and wherever
    an earlier release's watermark lies, the index and the open-ticket count are the same from
    a version 2 value as from the version 1 value that must be decoded; without a watermark, a
    version 3 value gives them too."""
    sla, _, _ = a_stream(tickets=0)
    sla.policies = sla.states.policies = engine.as_set(test_codec.POLICY)
    state = test_codec.as_of_version_3(state)  # what the earlier versions can hold
    domain = "maintenance" if isinstance(state, Maintenance) else "ticket"
    subject = state.maintenance_id if isinstance(state, Maintenance) else state.ticket_id
    table = wired(sla).maintenances if domain == "maintenance" else wired(sla).tickets
    found = []
    current = test_codec.encode(state)
    values = [version_2(current), test_codec.version_1(state)]
    for raw in [*values, current] if mark is None else values:
        sla.release({0})
        wired(sla).watermarks.clear()
        if mark is not None:
            wired(sla).watermarks[b"0"] = str(mark).encode()
        table.clear()
        table[subject.encode()] = raw
        sla.rebuild({0})
        index = sla.deadlines.partitions[0].index
        found.append((index.due_of(f"{domain[0]}:{subject}"), dict(sla.states.open_tickets[0])))
    assert all(f == found[0] for f in found)
