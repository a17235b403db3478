"""The per-partition deadline index: each key's next deadline, popped in due order when it passes."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from heapq import heapify, heappop, heappush
from itertools import count
from math import floor, inf
from operator import itemgetter
from typing import ClassVar

# (due, seq, key). The live dict maps each key to the very tuple filed for it, so an entry is
# live exactly when `live.get(key) is entry`: one identity test, no float comparison.
# `seq` is the arming order, and every list keeps entries in it: the live dict (a re-armed key
# is deleted and inserted again, not overwritten), each bucket (appended as armed, or refiled
# from the dict) and the front (buckets are drawn whole, after anything of the same second
# drawn before). Ties share a second, so a stable sort on `due` alone orders them by arming,
# three times faster than comparing tuples; and compaction can refile straight from the dict,
# three times faster than filtering every bucket.
_Entry = tuple[float, int, str]
_by_due = itemgetter(0)
_by_seq = itemgetter(1)


class DeadlineIndex:
    """Next deadline per key; a heap of one-second buckets with lazy deletion.

    A heap of every entry pays a cache miss per level on each pop: at a million keys it popped
    about 250k a second on the 2-core benchmark host. Here `arm` appends to the list of its
    whole second, the heap holds one int per such second, and `pop_due` moves the seconds that
    have begun into `_front`, one list sorted on demand, and takes from its head. Re-armed and
    cancelled entries stay behind as stale until reached or compacted away.
    """

    __slots__ = ("_buckets", "_front", "_live", "_seconds", "_seq", "_sorted", "_stale")

    # Compact once stale entries outnumber live ones by this much: the slack spares a small
    # index from refiling all the time. Checked after every arm, cancel and pop, it keeps
    # memory under twice live plus slack; as refiling costs O(live) and only arm and cancel
    # make stale entries, it costs O(1) amortised per arm or cancel.
    compact_slack: ClassVar[int] = 1024

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
        """Build from (key, due) pairs in O(n); a repeated key counts as armed where it last is."""
        index = cls()
        seq = index._seq
        live = {key: (due, next(seq), key) for key, due in items}
        if next(seq) != len(live):
            # A repeated key kept its first place in the dict but took a later seq.
            live = {entry[2]: entry for entry in sorted(live.values(), key=_by_seq)}
        index._live = live
        index._refile()
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
            del live[key]
            self._stale += 1
        entry = (due, next(self._seq), key)
        live[key] = entry
        bucket = self._buckets.get(second)
        if bucket is None:
            self._buckets[second] = [entry]
            heappush(self._seconds, second)
        else:
            bucket.append(entry)
        if self._stale > len(live) + self.compact_slack:
            self._refile()

    def cancel(self, key: str) -> None:
        """Forget `key`'s deadline; its entry goes stale and is dropped when reached."""
        live = self._live
        if live.pop(key, None) is not None:
            self._stale += 1
            if self._stale > len(live) + self.compact_slack:
                self._refile()

    def pop_due(self, now: float, limit: int | None = None) -> list[tuple[str, float]]:
        """Remove and return (key, due) with due <= now, earliest first, at most `limit`."""
        front = self._draw(now)
        live = self._live
        get = live.get
        out: list[tuple[str, float]] = []
        append = out.append
        left = len(live) if limit is None else limit
        passed = 0
        for entry in front:
            # `not <=` rather than `>`, so that a NaN `now` finds nothing due.
            if left <= 0 or not entry[0] <= now:
                break
            passed += 1
            key = entry[2]
            if get(key) is entry:
                del live[key]
                append((key, entry[0]))
                left -= 1
        del front[:passed]
        self._stale -= passed - len(out)
        if self._stale > len(live) + self.compact_slack:
            self._refile()
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

    def peek_after(self, after: float) -> float | None:
        """The earliest live deadline later than `after`, or None."""
        get = self._live.get
        while True:
            front = self._draw(-inf)  # sorted
            found = None
            for position in range(bisect_right(front, after, key=_by_due), len(front)):
                entry = front[position]
                if get(entry[2]) is entry:
                    found = entry[0]
                    break
            seconds = self._seconds
            if found is not None and not (seconds and seconds[0] <= found):
                return found
            if not seconds:
                return None
            # A bucket not drawn yet may hold an earlier one (as in `peek`): draw, look again.
            self._draw(seconds[0] if found is None else found)

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

    @property
    def stored(self) -> int:
        """Entries held, live or stale: what the index's memory grows with."""
        return len(self._live) + self._stale

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
            front.sort(key=_by_due)
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

    def _refile(self) -> None:
        """File every live entry afresh in arming order, which drops all stale ones."""
        buckets: dict[int, list[_Entry]] = {}
        get = buckets.get
        for entry in self._live.values():
            try:
                second = floor(entry[0])
            except (OverflowError, ValueError):
                raise ValueError(f"deadline of {entry[2]!r} is not finite: {entry[0]!r}") from None
            bucket = get(second)
            if bucket is None:
                buckets[second] = [entry]
            else:
                bucket.append(entry)
        self._buckets = buckets
        self._seconds = list(buckets)
        heapify(self._seconds)
        self._front = []
        self._sorted = True
        self._stale = 0
