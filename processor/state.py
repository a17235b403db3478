"""Each subject's state in the tables: loaded and stored through the codec, scanned to rebuild the
deadline indexes, and counted as open tickets (severity, tier) per partition."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processor import codec
from processor.faust_fixes.internals import rocksdb_items
from processor.instants import epoch, from_micros, micros_to_epoch
from processor.partitioning import partition_of_key
from processor.sla import engine
from processor.sla.engine import Domain
from processor.sla.policy_set import PolicySet
from processor.sla.ticket import Phase, Ticket
from processor.topology import Table, Wiring
from processor.writes import Writes

log = logging.getLogger(__name__)


OpenLabel = tuple[str, str]  # (severity, tier) of an open ticket


_PREFIX = {Domain.TICKET: "t:", Domain.MAINTENANCE: "m:"}
_DOMAIN_OF = {prefix: domain for domain, prefix in _PREFIX.items()}


def state_key(domain: Domain, subject: str) -> str:
    """A subject's key in the deadline index: its domain's prefix, then the subject."""
    return _PREFIX[domain] + subject


def split_key(key: str) -> tuple[Domain, str]:
    """(domain, subject) of a deadline index key."""
    return _DOMAIN_OF[key[:2]], key[2:]


def open_label(state: object) -> OpenLabel | None:
    """The `sla_open_tickets` labels of an open ticket; None for anything else."""
    if isinstance(state, Ticket) and state.phase is Phase.OPEN:
        return state.severity.value, state.tier.value
    return None


@dataclass(slots=True)
class Indexed:
    """What a scan of stored states found for some partitions, for their deadline indexes."""

    deadlines: dict[int, list[tuple[str, float]]]  # per partition: (index key, due seconds)
    open_tickets: dict[int, Counter[OpenLabel]]
    decoded: int = 0  # states decoded (not stored under this policy by this version)
    marks: dict[int, datetime | None] = field(default_factory=dict)


class States:
    """The tickets and maintenances tables, seen as states (the codec's business stays here)."""

    def __init__(self, topology: Wiring, policies: PolicySet, writes: Writes) -> None:
        self.topology = topology
        self.policies = policies
        self.open_tickets: dict[int, Counter[OpenLabel]] = {}
        # Reads and writes by partition, the changelog records sent by batch (processor.writes).
        self.writes = writes

    def table(self, domain: Domain) -> Table:
        return self.topology.maintenances if domain is Domain.MAINTENANCE else self.topology.tickets

    def load(
        self, domain: Domain, subject: str, legacy_mark: datetime | None, partition: int
    ) -> Any:
        """The subject's state, or None (never stored, forgotten, or corrupt: logged).

        A value of an earlier release (`codec.LEGACY`) is advanced through its partition's
        fired watermark `legacy_mark`: that release fired it up to there without storing it.
        """
        return self.load_value(domain, subject, legacy_mark, partition)[0]

    def load_value(
        self, domain: Domain, subject: str, legacy_mark: datetime | None, partition: int
    ) -> tuple[Any, str]:
        """`load`'s state, and the timeline text stored with it ("" when none)."""
        raw = self.writes.get(self.table(domain), partition, subject.encode())
        if raw is None:
            return None, ""
        try:
            state, version, timeline = codec.decode_value(raw)
        except codec.CorruptState:
            log.exception("corrupt state dropped", extra={"subject": subject})
            return None, ""
        if version in codec.LEGACY and legacy_mark is not None:
            return engine.advance(state, legacy_mark, self.policies).state, timeline
        return state, timeline

    def store(
        self,
        domain: Domain,
        subject: str,
        state: engine.State | None,
        due: datetime | None,
        partition: int,
        before: engine.State | None,
        timeline: str = "",
    ) -> None:
        """Store `state` with `due`, its next deadline (the decision's: the engine guarantees it
        equals `engine.next_deadline(state)`), and its timeline text, or forget the subject."""
        value = None
        if state is not None:
            stored_under = engine.of(state, self.policies).fingerprint
            value = codec.encode_state(state, due, stored_under, timeline)
        self._put(domain, subject, partition, value)
        self._count_open(partition, before, state)

    def forget(self, domain: Domain, subject: str, partition: int) -> None:
        self._put(domain, subject, partition, None)

    def _put(self, domain: Domain, subject: str, partition: int, value: bytes | None) -> None:
        self.writes.put(self.table(domain), partition, subject.encode(), value)

    def legacy_mark(self, partition: int) -> datetime | None:
        """The fired watermark an earlier release stored for `partition` (codec.LEGACY)."""
        raw = self.topology.watermarks.get(str(partition).encode())
        return None if raw is None else from_micros(int(raw))

    def index(self, partitions: set[int], now: datetime) -> Indexed:
        """The next deadline and open-ticket label of every state stored for `partitions`.

        A state stored by this version under a policy version the set still has, unchanged,
        carries its next deadline (`codec.peek`); any other is decoded to compute it again.
        """
        found = Indexed(
            {p: [] for p in partitions},
            {p: Counter() for p in partitions},
            marks={p: self.legacy_mark(p) for p in partitions},
        )
        for domain in Domain:
            for partition, key, raw in self._stored(domain, partitions):
                subject = key.decode(errors="replace")
                head = codec.peek(raw)
                if head is not None and head.policy in self.policies.fingerprints:
                    label = head.open_label
                    due = None if head.due_us is None else micros_to_epoch(head.due_us)
                else:
                    found.decoded += 1
                    decoded = self._decoded(subject, raw, found.marks[partition], now)
                    if decoded is None:
                        continue  # corrupt, logged
                    due, label = decoded
                if due is not None:
                    found.deadlines[partition].append((state_key(domain, subject), due))
                if label is not None:
                    found.open_tickets[partition][label] += 1
        return found

    def _decoded(
        self, subject: str, raw: bytes, mark: datetime | None, now: datetime
    ) -> tuple[float | None, OpenLabel | None] | None:
        """(next deadline in epoch seconds, open-ticket label) of a stored state, decoded;
        None for a value that cannot be decoded."""
        try:
            state, version = codec.decode_stored(raw)
            if version in codec.LEGACY and mark is not None:
                advanced = engine.advance(state, mark, self.policies).state
                if advanced is None:
                    return epoch(now), None  # expired: the next tick forgets it
                state = advanced
            due = engine.next_deadline(state, self.policies)
        except Exception:  # one bad value must not stop a take-over; it is logged, with its id
            log.exception("corrupt state skipped", extra={"subject": subject})
            return None
        return (None if due is None else epoch(due)), open_label(state)

    def _stored(self, domain: Domain, partitions: set[int]) -> Iterator[tuple[int, bytes, bytes]]:
        """(partition, key, value) of the states stored for `partitions`.

        The RocksDB store keeps one database per partition: read just those (a scan of the
        table would hash every key to find its partition). The memory store is one mapping,
        with standby copies of other workers' partitions: each key is hashed.
        """
        table = self.table(domain)
        own = rocksdb_items(table, partitions)
        if own is not None:
            yield from own
            return
        for key, raw in table.items():
            partition = partition_of_key(key, self.topology.partitions)
            if partition in partitions:
                yield partition, key, raw

    def _count_open(self, partition: int, before: Any, after: Any) -> None:
        counts = self.open_tickets.setdefault(partition, Counter())
        for state, delta in ((before, -1), (after, +1)):
            label = open_label(state)
            if label is not None:
                counts[label] += delta

    def open_totals(self) -> dict[OpenLabel, int]:
        """Open tickets per (severity, tier) over the owned partitions (the gauge)."""
        total: dict[OpenLabel, int] = {}
        for counts in list(self.open_tickets.values()):
            for key, count in counts.items():
                total[key] = total.get(key, 0) + count
        return total
