"""When a partition's deadlines may fire: only once its inputs are applied up to a firing decision.

The rule (docs/decisions.md, 27): a tick decided at `upto` is sent to the partition only when the
worker has applied every input record that was in Kafka, for that partition, when the tick was
decided: each owned input partition up to its end offset taken then (a mis-keyed record there may
belong to the partition, and is forwarded through the re-key topic), and the partition's re-key
source up to its own end offset then, raised to cover what those inputs forwarded to it.

A record appended after the decision is a *late* event (decision 25). The rule costs lateness: a
deadline fires as late as the worker's lag behind its inputs.

What carries the firing does not matter to the rule: the tick read back from the ticks topic,
or any record of the partition handled once the barrier is ready (the same unit of work).

Stored states are self-describing: a state's pending deadlines have not fired, because a tick
stores the state it advanced. So an event emits exactly what `engine.decide` returns, a tick
exactly what `engine.advance` returns, whatever the order in which they were read.

Offsets are plain ints and sources `(topic, partition)` pairs; nothing here talks to Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

Source = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What the Kafka client last handed over from one source partition, taken together.

    `handed`: the offset after the last record handed over; `position`: the client's position
    right after (past any transaction markers and aborted records it skipped).
    """

    handed: int
    position: int | None


def caught_up(applied: int, end: int, fetched: Fetched | None) -> bool:
    """Every record before `end` is applied (`applied`: the offset after the last one done with).

    Offsets without a record (transaction markers, aborted records) can end a partition: then
    no applied record reaches `end`, but the client's position passed it and every record it
    handed over is applied.
    """
    if applied >= end:
        return True
    if fetched is None or fetched.position is None:
        return False
    return fetched.position >= end and fetched.handed <= applied


Applied = Mapping[Source, int]
FetchedBy = Mapping[Source, Fetched]


def read_up_to(ends: Mapping[Source, int], applied: Applied, fetched: FetchedBy) -> bool:
    """Every source in `ends` is applied up to its end."""
    return all(
        caught_up(applied.get(source, 0), end, fetched.get(source)) for source, end in ends.items()
    )


@dataclass(slots=True)
class Barrier:
    """A tick of one partition, decided at `upto`, waiting for the records in Kafka at that instant.

    Phase one waits for `inputs` (every owned input partition). Then the shell learns where the
    records they forwarded to this partition landed (`count_forwards`), and phase two waits for
    `rekeyed` up to the larger of its end at the decision and those forwards.
    """

    upto: datetime
    inputs: dict[Source, int]
    rekeyed: Source
    rekeyed_end: int
    decided_at: float  # monotonic seconds, for the hold-time metric
    forwards_counted: bool = False
    warned: bool = False  # the shell logged that it waits long
    ready_since: float | None = None  # monotonic: ready, left to a record in hand (the shell's)

    def inputs_read(self, applied: Applied, fetched: FetchedBy) -> bool:
        return read_up_to(self.inputs, applied, fetched)

    def count_forwards(self, forwarded_end: int) -> None:
        """`forwarded_end`: the offset after the last record forwarded to `rekeyed` so far."""
        self.rekeyed_end = max(self.rekeyed_end, forwarded_end)
        self.forwards_counted = True

    def ready(self, applied: Applied, fetched: FetchedBy) -> bool:
        if not self.forwards_counted:
            return False
        return read_up_to({self.rekeyed: self.rekeyed_end}, applied, fetched)

    def unread(self, applied: Applied, fetched: FetchedBy) -> list[Source]:
        """The sources still short of their ends (for logs)."""
        ends = {**self.inputs, self.rekeyed: self.rekeyed_end}
        return sorted(s for s in ends if not read_up_to({s: ends[s]}, applied, fetched))

    def awaited(self, applied: Applied, fetched: FetchedBy) -> dict[Source, int]:
        """The sources the current phase still waits for, and the offset each must reach."""
        ends = self.inputs if not self.forwards_counted else {self.rekeyed: self.rekeyed_end}
        return {
            source: end
            for source, end in ends.items()
            if not caught_up(applied.get(source, 0), end, fetched.get(source))
        }
