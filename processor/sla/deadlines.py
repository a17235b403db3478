"""The per-partition deadline index: each key's next deadline, popped in due order when it passes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from heapq import heapify, heappop, heappush
from itertools import count
from math import floor, inf
from operator import itemgetter

# (due, seq, key). The live dict maps each key to the very tuple filed for it, so an entry is
# live exactly when `live.get(key) is entry`: one identity test, never a float comparison.
# `seq` is the arming order; entries with equal dues always sit in a list in `seq` order (a
# bucket is appended in arming order and drawn whole), so a stable sort on `due` alone orders
# ties by arming, and sorting on a float key is about three times faster than on the tuple.
_Entry = tuple[float, int, str]
_due = itemgetter(0)
_seq = itemgetter(1)

# Compact once stale entries outnumber live ones by this much: the slack spares small indexes
# from rebuilding all the time, and stale <= live + slack bounds memory at about twice live.
_COMPACT_SLACK = 1024


class DeadlineIndex:
    """Next deadline per key; a heap of one-second buckets with lazy deletion.

    A binary heap of every entry costs a cache miss per level on each pop: at a million keys
    `heappop` alone manages about 200k pops a second. Here arming appends to the bucket of its
    whole second, the heap holds one int per pending second, and `pop_due` draws the buckets
    that have come due into `_front`, one list sorted on demand, then pops from its head.
    """

    __slots__ = ("_buckets", "_front", "_live", "_seconds", "_seq", "_sorted", "_stale")

    def __init__(self) -> None:
        self._live: dict[str, _Entry] = {}
        self._buckets: dict[int, list[_Entry]] = {}
        self._seconds: list[int] = []
        self._front: list[_Entry] = []
        self._sorted = True
        self._stale = 0
        self._seq: Iterator[int] = count()

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, float]]) -> DeadlineIndex:
        """Build from (key, due) pairs in O(n); a repeated key keeps its last due."""
        index = cls()
        seq = index._seq
        index._live = live = {key: (due, next(seq), key) for key, due in items}
        entries = list(live.values())
        if next(seq) != len(entries) + 1:
            # A repeated key kept its first place but took a later seq; restore arming order.
            entries.sort(key=_seq)
        buckets = index._buckets
        for entry in entries:
            try:
                second = floor(entry[0])
            except (OverflowError, ValueError):
                raise ValueError(f"deadline of {entry[2]!r} is not finite: {entry[0]!r}") from None
            bucket = buckets.get(second)
            if bucket is None:
                buckets[second] = [entry]
            else:
                bucket.append(entry)
        index._seconds = list(buckets)
        heapify(index._seconds)
        return index

    def arm(self, key: str, due: float) -> None:
        """Set or move `key`'s deadline; the same due again keeps its place among ties."""
        live = self._live
        old = live.get(key)
        if old is not None and old[0] == due:
            return
        try:
            second = floor(due)
        except (OverflowError, ValueError):
            raise ValueError(f"deadline of {key!r} is not finite: {due!r}") from None
        if old is not None:
            self._stale += 1
        entry = (due, next(self._seq), key)
        live[key] = entry
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = [entry]
            heappush(self._seconds, second)
        else:
            bucket.append(entry)
        if self._stale > len(live) + _COMPACT_SLACK:
            self._compact()

    def cancel(self, key: str) -> None:
        """Forget `key`'s deadline; its entry goes stale and is dropped when reached."""
        live = self._live
        if live.pop(key, None) is not None:
            self._stale += 1
            if self._stale > len(live) + _COMPACT_SLACK:
                self._compact()

    def pop_due(self, now: float, limit: int | None = None) -> list[tuple[str, float]]:
        """Remove and return (key, due) with due <= now, earliest first, at most `limit`."""
        front = self._draw(now)
        live = self._live
        take = live.pop
        out: list[tuple[str, float]] = []
        append = out.append
        left = len(live) if limit is None else limit
        passed = 0
        for entry in front:
            if left <= 0 or entry[0] > now:
                break
            passed += 1
            key = entry[2]
            current = take(key, None)
            if current is entry:
                append((key, entry[0]))
                left -= 1
            elif current is not None:
                live[key] = current
        del front[:passed]
        self._stale -= passed - len(out)
        return out

    def peek(self) -> float | None:
        """The earliest live deadline, or None when empty."""
        while True:
            head = self._live_head()
            seconds = self._seconds
            if head is None:
                if not seconds:
                    return None
                self._draw(seconds[0])
            elif seconds and seconds[0] <= head[0]:
                self._draw(head[0])
            else:
                return head[0]

    def due_of(self, key: str) -> float | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def clear(self) -> None:
        self._live.clear()
        self._buckets.clear()
        self._seconds.clear()
        self._front.clear()
        self._sorted = True
        self._stale = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def _draw(self, now: float) -> list[_Entry]:
        """Move every bucket that may hold a due <= now into the front; return it sorted."""
        seconds = self._seconds
        front = self._front
        if seconds and seconds[0] <= now:
            buckets = self._buckets
            while seconds and seconds[0] <= now:
                front += buckets.pop(heappop(seconds))
            self._sorted = False
        if not self._sorted:
            front.sort(key=_due)
            self._sorted = True
        return front

    def _live_head(self) -> _Entry | None:
        """Drop stale entries from the sorted front's head; return the first live one."""
        front = self._draw(-inf)
        get = self._live.get
        for passed, entry in enumerate(front):
            if get(entry[2]) is entry:
                del front[:passed]
                self._stale -= passed
                return entry
        self._stale -= len(front)
        front.clear()
        return None

    def _compact(self) -> None:
        """Drop every stale entry, keeping each list's order (and so the order of ties)."""
        get = self._live.get
        self._front[:] = [entry for entry in self._front if get(entry[2]) is entry]
        buckets = {}
        for second, bucket in self._buckets.items():
            kept = [entry for entry in bucket if get(entry[2]) is entry]
            if kept:
                buckets[second] = kept
        self._buckets = buckets
        self._seconds = list(buckets)
        heapify(self._seconds)
        self._stale = 0
