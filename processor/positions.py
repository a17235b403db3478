"""How far the worker has read each source partition: what a held tick waits for.

`applied` is written by the stream (the offset after the last record done with); `fetched` by
the Kafka client's thread after each fetch (`on_fetched`), one whole value per source at a time,
so the stream never sees half of one update.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from processor.faust_fixes.internals import client_assignment, position
from processor.sla.firing import Barrier, Fetched, Source


@dataclass(slots=True)
class ReadPositions:
    """Per source partition (`(topic, partition)` of the topics in `topics`): applied, fetched,
    and the offset a held tick waits for."""

    topics: tuple[str, ...]
    applied: dict[Source, int] = field(default_factory=dict)
    fetched: dict[Source, Fetched] = field(default_factory=dict)
    # Per source, the offset a held tick waits for (the lowest): reaching it wakes the loop.
    awaited: dict[Source, int] = field(default_factory=dict)

    def done(self, source: Source, offset: int) -> bool:
        """The record at `offset` was done with; True if a held tick waited for it."""
        done = offset + 1
        self.applied[source] = done
        awaited = self.awaited.get(source)
        if awaited is not None and done >= awaited:
            del self.awaited[source]
            return True
        return False

    def in_hand(self, partition: int) -> bool:
        """The Kafka client handed over a record of the partition that is not yet applied."""
        applied = self.applied
        for topic in self.topics:
            fetched = self.fetched.get((topic, partition))
            if fetched is not None and fetched.handed > applied.get((topic, partition), 0):
                return True
        return False

    def waiting(self) -> bool:
        """A record the Kafka client handed over is not yet done with, on some source."""
        applied = self.applied
        # A copy: the Kafka client's thread adds and removes sources meanwhile.
        fetched = list(self.fetched.items())
        return any(f.handed > applied.get(source, 0) for source, f in fetched)

    def await_held(self, barriers: Iterable[Barrier]) -> None:
        """Remember, per source, the lowest offset one of `barriers` still waits for."""
        awaited: dict[Source, int] = {}
        for barrier in barriers:
            for source, end in barrier.awaited(self.applied, self.fetched).items():
                awaited[source] = min(end, awaited.get(source, end))
        self.awaited = awaited

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions released, or owned anew: what was reported of them no longer holds."""
        for partition in partitions:
            for topic in self.topics:
                self.applied.pop((topic, partition), None)
                self.fetched.pop((topic, partition), None)

    def on_fetched(
        self, consumer: Any, partitions: Iterable[Any], records: Mapping[Any, Any]
    ) -> None:
        """After each fetch, on the Kafka client's thread: what it handed over, and its position
        (past any transaction markers and aborted records it skipped)."""
        assignment = client_assignment(consumer)
        if assignment is None:  # no subscription: nothing to trust
            return
        topics, fetched = self.topics, self.fetched
        # Every partition the fetch handed records of, whatever `partitions` holds now: it is
        # Faust's own set of active partitions, which the main thread changes meanwhile (a
        # partition whose buffer filled is taken out). A report skipped there left `handed`
        # behind while the position moved on, and the next empty fetch paired the old `handed`
        # with the new position: read up to it, the partition passed for read with records
        # not yet applied.
        for tp in {*records, *tuple(partitions)}:
            if tp.topic not in topics:
                continue
            source = (tp.topic, tp.partition)
            batch = records.get(tp)
            if batch:
                handed = batch[-1].offset + 1
            else:
                previous = fetched.get(source)
                handed = previous.handed if previous is not None else 0
            fetched[source] = Fetched(handed, position(assignment, tp))

    def on_seek(self, partitions: Iterable[Any]) -> None:
        """The client was sought (to committed offsets, or to the beginning): what it reported
        it had fetched of these partitions before no longer holds."""
        for tp in partitions:
            self.fetched.pop((tp.topic, tp.partition), None)
