"""The deadline index against hand-worked tables and against a plain dict as reference model."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from processor.sla.deadlines import DeadlineIndex

# (key, due) arms the key; (key, None) cancels it.
Op = tuple[str, float | None]


def build(ops: list[Op]) -> DeadlineIndex:
    index = DeadlineIndex()
    for key, due in ops:
        if due is None:
            index.cancel(key)
        else:
            index.arm(key, due)
    return index


def stored_entries(index: DeadlineIndex) -> int:
    """What the index really holds, counted from its lists (the white box `stored` summarises)."""
    buckets = index._buckets
    assert sorted(index._seconds) == sorted(buckets)
    return len(index._front) + sum(len(bucket) for bucket in buckets.values())


POP_CASES: list[tuple[str, list[Op], float, int | None, list[tuple[str, float]]]] = [
    (
        "due order",
        [("a", 3.0), ("b", 1.0), ("c", 2.0)],
        9.0,
        None,
        [("b", 1.0), ("c", 2.0), ("a", 3.0)],
    ),
    ("only what is due", [("a", 3.0), ("b", 1.0)], 2.0, None, [("b", 1.0)]),
    ("due equal to now is due", [("a", 2.5)], 2.5, None, [("a", 2.5)]),
    ("nothing due", [("a", 3.0)], 2.999, None, []),
    ("empty", [], 9.0, None, []),
    ("re-arm earlier", [("a", 5.0), ("b", 3.0), ("a", 1.0)], 9.0, None, [("a", 1.0), ("b", 3.0)]),
    ("re-arm later", [("a", 1.0), ("b", 3.0), ("a", 5.0)], 4.0, None, [("b", 3.0)]),
    ("cancel", [("a", 1.0), ("b", 2.0), ("a", None)], 9.0, None, [("b", 2.0)]),
    ("cancel absent", [("a", 1.0), ("zz", None)], 9.0, None, [("a", 1.0)]),
    ("arm after cancel", [("a", 1.0), ("a", None), ("a", 4.0)], 9.0, None, [("a", 4.0)]),
    (
        "ties in arming order",
        [("c", 1.0), ("a", 1.0), ("b", 1.0)],
        1.0,
        None,
        [("c", 1.0), ("a", 1.0), ("b", 1.0)],
    ),
    (
        "same due keeps its place",
        [("a", 1.0), ("b", 1.0), ("a", 1.0)],
        1.0,
        None,
        [("a", 1.0), ("b", 1.0)],
    ),
    (
        "moved back goes behind",
        [("a", 1.0), ("b", 1.0), ("a", 2.0), ("a", 1.0)],
        1.0,
        None,
        [("b", 1.0), ("a", 1.0)],
    ),
    (
        "within one second",
        [("a", 7.9), ("b", 7.1), ("c", 8.0)],
        7.95,
        None,
        [("b", 7.1), ("a", 7.9)],
    ),
    (
        "negative and fractional",
        [("a", -0.5), ("b", -1.5), ("c", 0.0)],
        -0.5,
        None,
        [("b", -1.5), ("a", -0.5)],
    ),
    ("limit", [("a", 3.0), ("b", 1.0), ("c", 2.0)], 9.0, 2, [("b", 1.0), ("c", 2.0)]),
    ("limit zero", [("a", 1.0)], 9.0, 0, []),
    ("limit skips stale", [("a", 1.0), ("b", 2.0), ("a", None), ("c", 3.0)], 9.0, 1, [("b", 2.0)]),
]


@pytest.mark.parametrize(
    ("ops", "now", "limit", "expected"),
    [case[1:] for case in POP_CASES],
    ids=[case[0] for case in POP_CASES],
)
def test_pop_due(
    ops: list[Op], now: float, limit: int | None, expected: list[tuple[str, float]]
) -> None:
    index = build(ops)
    before = len(index)
    assert index.pop_due(now, limit) == expected
    assert len(index) == before - len(expected)
    assert not any(key in index for key, _ in expected)


def test_popped_keys_are_gone_and_the_rest_stay() -> None:
    index = build([("a", 1.0), ("b", 2.0), ("c", 3.0)])
    assert index.pop_due(2.0) == [("a", 1.0), ("b", 2.0)]
    assert index.pop_due(2.0) == []
    assert index.pop_due(3.0) == [("c", 3.0)]
    assert len(index) == 0


def test_chunks_pop_in_order() -> None:
    index = DeadlineIndex.from_items((f"k{i}", 1.0 + (i * 7 % 10) / 10) for i in range(10))
    chunks = [index.pop_due(5.0, 3) for _ in range(5)]
    assert [len(chunk) for chunk in chunks] == [3, 3, 3, 1, 0]
    dues = [due for chunk in chunks for _, due in chunk]
    assert dues == sorted(dues)


def test_arming_into_a_second_already_drawn() -> None:
    index = build([("a", 1.5), ("late", 1.5)])
    assert index.pop_due(1.2) == []
    index.arm("b", 1.3)
    index.arm("c", 1.5)
    index.cancel("late")
    assert index.pop_due(2.0) == [("b", 1.3), ("a", 1.5), ("c", 1.5)]


PEEK_CASES: list[tuple[str, list[Op], float | None]] = [
    ("empty", [], None),
    ("earliest", [("a", 3.0), ("b", 1.25)], 1.25),
    ("after cancelling the head", [("a", 3.0), ("b", 1.0), ("b", None)], 3.0),
    ("after moving the head later", [("a", 3.0), ("b", 1.0), ("b", 4.0)], 3.0),
    ("all cancelled", [("a", 3.0), ("a", None)], None),
]


@pytest.mark.parametrize(
    ("ops", "expected"), [case[1:] for case in PEEK_CASES], ids=[case[0] for case in PEEK_CASES]
)
def test_peek(ops: list[Op], expected: float | None) -> None:
    index = build(ops)
    assert index.peek() == expected
    assert index.peek() == expected


def test_peek_sees_an_earlier_arm_after_peeking() -> None:
    index = build([("a", 100.0)])
    assert index.peek() == 100.0
    index.arm("b", 5.5)
    assert index.peek() == 5.5
    index.arm("c", 100.2)
    assert index.pop_due(100.1) == [("b", 5.5), ("a", 100.0)]
    assert index.peek() == 100.2


def test_due_of_len_contains() -> None:
    index = build([("a", 3.0), ("b", 1.0), ("a", 2.0), ("b", None)])
    assert (index.due_of("a"), index.due_of("b"), len(index)) == (2.0, None, 1)
    assert "a" in index
    assert "b" not in index
    assert 3 not in index


def test_clear() -> None:
    index = build([("a", 3.0), ("b", 1.0), ("a", None)])
    index.peek()
    index.clear()
    assert (len(index), index.peek(), index.pop_due(9.0), index.stored) == (0, None, [], 0)
    index.arm("a", 2.0)
    assert index.pop_due(9.0) == [("a", 2.0)]


def test_from_items() -> None:
    index = DeadlineIndex.from_items([("a", 3.0), ("b", 1.0), ("c", 1.0), ("d", 2.0)])
    assert len(index) == 4
    assert index.peek() == 1.0
    assert index.pop_due(2.0) == [("b", 1.0), ("c", 1.0), ("d", 2.0)]
    index.arm("e", 3.0)
    assert index.pop_due(3.0) == [("a", 3.0), ("e", 3.0)]


def test_from_items_repeated_key_keeps_last_due_and_arming_order() -> None:
    index = DeadlineIndex.from_items([("a", 1.0), ("b", 1.0), ("a", 1.0), ("c", 9.0)])
    assert index.pop_due(5.0) == [("b", 1.0), ("a", 1.0)]
    assert index.due_of("c") == 9.0


def test_from_items_empty() -> None:
    index = DeadlineIndex.from_items([])
    assert (len(index), index.peek(), index.pop_due(1e12)) == (0, None, [])


@pytest.mark.parametrize("due", [math.nan, math.inf, -math.inf])
def test_non_finite_due_is_refused(due: float) -> None:
    index = build([("a", 1.0)])
    with pytest.raises(ValueError, match="not finite"):
        index.arm("a", due)
    with pytest.raises(ValueError, match="not finite"):
        DeadlineIndex.from_items([("b", due)])
    assert (index.due_of("a"), index.stored) == (1.0, 1)


def test_nan_now_finds_nothing_due() -> None:
    index = build([("a", 1.0)])
    assert index.peek() == 1.0
    assert index.pop_due(math.nan) == []
    assert index.pop_due(1.0) == [("a", 1.0)]


class _TinySlack(DeadlineIndex):
    """Compacts after a handful of stale entries, so short runs exercise compaction."""

    __slots__ = ()
    compact_slack: ClassVar[int] = 2


def test_same_due_again_adds_no_entry() -> None:
    index = build([("a", 1.0)])
    for _ in range(5):
        index.arm("a", 1.0)
    assert index.stored == stored_entries(index) == 1


def test_churn_keeps_memory_bounded_and_results_right() -> None:
    index = DeadlineIndex()
    for round_ in range(3000):
        for key in ("a", "b", "c"):
            index.arm(key, 10.0 + (round_ % 97) / 10)
        assert stored_entries(index) <= 2 * len(index) + DeadlineIndex.compact_slack + 1
    index.cancel("b")
    assert index.stored == stored_entries(index)
    assert index.pop_due(100.0) == [("a", 10.0 + 2999 % 97 / 10), ("c", 10.0 + 2999 % 97 / 10)]


def test_compaction_keeps_ties_in_arming_order() -> None:
    index = build([("a", 5.0), ("b", 1.0), ("a", 1.0), ("c", 1.0), ("c", 2.0), ("c", 1.0)])
    assert index.stored == stored_entries(index) == 6
    index._refile()
    assert index.stored == stored_entries(index) == 3
    assert index.pop_due(1.0) == [("b", 1.0), ("a", 1.0), ("c", 1.0)]


def test_popping_live_entries_compacts_the_stale_left_behind() -> None:
    index = _TinySlack()
    for key in "abcde":
        index.arm(key, 9.0)
    for key in "abcd":
        index.arm(key, 1.0)
    assert index.stored == 9
    assert [key for key, _ in index.pop_due(1.0)] == ["a", "b", "c", "d"]
    assert index.stored == stored_entries(index) == 1


def test_cancel_churn_compacts_too() -> None:
    index = _TinySlack.from_items((f"k{i}", float(i)) for i in range(100))
    for i in range(0, 100, 2):
        index.cancel(f"k{i}")
        assert stored_entries(index) <= 2 * len(index) + _TinySlack.compact_slack + 1
    assert index.stored == stored_entries(index)
    assert index.pop_due(10.0) == [(f"k{i}", float(i)) for i in range(1, 11, 2)]
    assert index.peek() == 11.0


# Few keys and dues drawn from a short list make re-arms, ties and shared seconds common.
KEYS = st.sampled_from([f"t{i}" for i in range(6)])
DUES = st.one_of(
    st.sampled_from([-1.5, -0.0, 0.5, 1.0, 1e9 + 0.5]),
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
)
# Starting from a table full of ties and repeated keys checks the order from_items files.
TIED = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), DUES)


class IndexAgainstDict(RuleBasedStateMachine):
    """Every operation on the index and on a dict of key -> (due, arming seq) agrees."""

    def __init__(self) -> None:
        super().__init__()
        self.index: DeadlineIndex = _TinySlack()
        self.model: dict[str, tuple[float, int]] = {}
        self.seq = 0

    def _set(self, key: str, due: float) -> None:
        self.model[key] = (due, self.seq)
        self.seq += 1

    @rule(arms=st.lists(st.tuples(KEYS, DUES), min_size=1, max_size=4))
    def arm(self, arms: list[tuple[str, float]]) -> None:
        for key, due in arms:
            self.index.arm(key, due)
            old = self.model.get(key)
            if old is None or old[0] != due:
                self._set(key, due)

    @rule(key=KEYS)
    def cancel(self, key: str) -> None:
        self.index.cancel(key)
        self.model.pop(key, None)

    @rule(now=DUES, limit=st.none() | st.integers(min_value=0, max_value=4))
    def pop_due(self, now: float, limit: int | None) -> None:
        due = sorted((d, s, k) for k, (d, s) in self.model.items() if d <= now)[:limit]
        for _, _, key in due:
            del self.model[key]
        assert self.index.pop_due(now, limit) == [(key, d) for d, _, key in due]

    @rule(after=DUES)
    def peek_after(self, after: float) -> None:
        later = [d for d, _ in self.model.values() if d > after]
        assert self.index.peek_after(after) == min(later, default=None)

    @initialize(items=st.lists(st.tuples(KEYS, TIED), max_size=12))
    def start(self, items: list[tuple[str, float]]) -> None:
        self.index = _TinySlack.from_items(items)
        for key, due in items:
            self._set(key, due)

    @rule()
    def compact(self) -> None:
        """Compaction at any moment must change nothing anyone can see."""
        self.index._refile()

    @precondition(lambda self: len(self.model) >= 6)
    @rule()
    def clear(self) -> None:
        self.index.clear()
        self.model.clear()

    @invariant()
    def same_keys(self) -> None:
        assert len(self.index) == len(self.model)
        assert {k: self.index.due_of(k) for k in self.model} == {
            k: d for k, (d, _) in self.model.items()
        }
        assert self.index.stored == stored_entries(self.index)
        assert self.index.stored <= 2 * len(self.model) + _TinySlack.compact_slack

    @invariant()
    def same_earliest(self) -> None:
        assert self.index.peek() == min((d for d, _ in self.model.values()), default=None)


IndexAgainstDict.TestCase.settings = settings(max_examples=300, stateful_step_count=60)
TestIndexAgainstDict = IndexAgainstDict.TestCase
