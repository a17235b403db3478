"""`ReadPositions.on_fetched`: what the Kafka client handed over, per source, with its position.

The partitions it is given are Faust's live set of active partitions, changed by the main
thread while the client's thread reports (a partition whose buffer is full is taken out): the
records handed over count whatever that set holds by then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.positions import ReadPositions
from processor.sla.firing import Fetched, caught_up


@dataclass(frozen=True)
class _TP:
    topic: str
    partition: int


@dataclass
class _Record:
    offset: int


class _State:
    def __init__(self, position: int) -> None:
        self.position = position
        self.has_valid_position = True


class _Assignment:
    def __init__(self) -> None:
        self.positions: dict[_TP, int] = {}

    def state_value(self, tp: _TP) -> _State | None:
        found = self.positions.get(tp)
        return None if found is None else _State(found)


class _Consumer:
    def __init__(self, assignment: _Assignment) -> None:
        self._subscription: Any = type("S", (), {})()
        self._subscription.subscription = type("T", (), {"assignment": assignment})()


def test_records_of_a_partition_taken_out_of_the_active_set_still_count_as_handed() -> None:
    tp = _TP("tickets", 0)
    positions = ReadPositions(("tickets",))
    assignment = _Assignment()
    consumer = _Consumer(assignment)
    assignment.positions[tp] = 10
    positions.on_fetched(consumer, {tp}, {tp: [_Record(o) for o in range(10)]})
    assert positions.fetched[(tp.topic, 0)] == Fetched(handed=10, position=10)
    # Ten more handed over while the main thread took the partition out of the active set.
    assignment.positions[tp] = 20
    positions.on_fetched(consumer, set(), {tp: [_Record(o) for o in range(10, 20)]})
    assert positions.fetched[(tp.topic, 0)] == Fetched(handed=20, position=20)
    # Back in the set, a fetch with nothing for it: the position is not read as "all applied".
    positions.on_fetched(consumer, {tp}, {})
    positions.applied[(tp.topic, 0)] = 10
    fetched = positions.fetched[(tp.topic, 0)]
    assert not caught_up(10, 20, fetched)
    positions.applied[(tp.topic, 0)] = 20
    assert caught_up(20, 20, positions.fetched[(tp.topic, 0)])


def test_other_topics_and_partitions_without_records_keep_what_was_reported() -> None:
    tickets, other = _TP("tickets", 1), _TP("elsewhere", 1)
    positions = ReadPositions(("tickets",))
    assignment = _Assignment()
    assignment.positions[tickets] = 5
    consumer = _Consumer(assignment)
    positions.on_fetched(consumer, {tickets, other}, {tickets: [_Record(4)], other: [_Record(9)]})
    assert positions.fetched == {("tickets", 1): Fetched(handed=5, position=5)}
    assignment.positions[tickets] = 7  # past two transaction markers, no record handed
    positions.on_fetched(consumer, {tickets}, {})
    assert positions.fetched == {("tickets", 1): Fetched(handed=5, position=7)}
