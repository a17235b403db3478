"""What the worker writes to Kafka: outputs, dead letters, forwards to the re-key topic, ticks.

Everything a record (or a tick) causes is sent in the transaction of the *source* partition
being processed (exactly-once); Faust's own `topic.send` would pick the destination's, which
for an output topic is not a partition of this worker's consumer group at all. Ticks bypass
transactions: they must be visible at once, and carry no state.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from processor.instants import from_micros, micros
from processor.metrics import Metrics
from processor.sla.outputs import (
    Acknowledged,
    Breach,
    DeadlineWarning,
    Escalation,
    MaintenanceNotice,
    Output,
    Retraction,
    SurveyDue,
    Unacknowledged,
    UpdateDue,
)
from processor.topology import MAX_REQUEST_SIZE, Wiring
from schemas.outputs import HEADERS, encode

log = logging.getLogger(__name__)

_ORIGIN = ("sla-origin-topic", "sla-origin-partition", "sla-origin-offset")

# A dead letter that does not fit in one producer request keeps its key's first KEY_KEPT bytes
# (when the key is longer) and as much of its value as fits.
KEY_KEPT = 1024

Ack = Awaitable[Any]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an input record came from, for dead-letter headers and logs; `key` is its key (for a
    re-keyed record, the re-keyed one: the subject)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    # The record's own headers (a binary-mode event's attributes among them): kept on its way
    # to the re-key topic and to the dead-letter topic.
    upstream: tuple[tuple[str, bytes], ...] = ()

    def headers(self) -> list[tuple[str, bytes]]:
        values = (self.topic, str(self.partition), str(self.offset))
        return [(name, value.encode()) for name, value in zip(_ORIGIN, values, strict=True)]

    @classmethod
    def from_headers(
        cls, headers: tuple[tuple[str, bytes], ...], key: bytes | None
    ) -> Origin | None:
        """The origin a forwarded record carries, with the upstream's headers; None if absent."""
        found = {k: (v or b"").decode(errors="replace") for k, v in headers if k in _ORIGIN}
        if len(found) != len(_ORIGIN):
            return None
        upstream = tuple((k, v) for k, v in headers if k not in _ORIGIN)
        try:
            partition, offset = int(found[_ORIGIN[1]]), int(found[_ORIGIN[2]])
        except ValueError:
            return None
        return cls(found[_ORIGIN[0]], partition, offset, key, upstream)


class Sender:
    """Sends in the unit of work of a source partition; counts what it sends."""

    def __init__(
        self,
        topology: Wiring,
        metrics: Metrics,
        clock: Callable[[], datetime],
        exactly_once: bool,
    ) -> None:
        self.topology = topology
        self.metrics = metrics
        self.clock = clock
        self._exactly_once = exactly_once
        self._ticks = topology.ticks.get_topic_name()
        self._rekeyed = topology.rekeyed.get_topic_name()

    async def outputs(self, outputs: Iterable[Output], partition: int, *, timer: bool) -> list[Ack]:
        """Send each output as a CloudEvent keyed by its subject; the acknowledgements."""
        outputs = list(outputs)
        if not outputs:
            return []
        acks = []
        now = self.clock()
        for output in outputs:
            value = encode(output, now)
            topic = self.topology.outputs[output.TOPIC].get_topic_name()
            acks.append(await self._send(topic, output.subject.encode(), value, list(HEADERS),
                                         partition))  # fmt: skip
            self._count(output, now, timer)
        return acks

    async def forward(self, subject: str, raw: bytes | None, origin: Origin, partition: int) -> Ack:
        """Forward an input record to the re-key topic, keyed by its subject, with its own
        headers and its origin."""
        headers = [*origin.upstream, *origin.headers()]
        return await self._send(self._rekeyed, subject.encode(), raw, headers, partition)

    async def dead_letter(
        self,
        origin: Origin,
        raw: bytes | None,
        reason: str,
        error: str,
        message: str,
        partition: int,
    ) -> None:
        """The record, untouched, to its topic's dead-letter topic, with why; counted and logged
        by ids only."""
        self.metrics.events_rejected.labels(origin.topic, reason).inc()
        log.warning(
            "event rejected",
            extra={
                "reason": reason,
                "topic": origin.topic,
                "partition": origin.partition,
                "offset": origin.offset,
            },
        )
        headers = [
            *origin.upstream,
            ("sla-error-class", error.encode()),
            ("sla-error-reason", reason.encode()),
            ("sla-error-message", message[:1024].encode()),
            *origin.headers(),
        ]
        dlq = self.topology.dead_letters[origin.topic].get_topic_name()
        if raw is None and origin.key is None:
            raw = b""  # aiokafka cannot send a record with neither key nor value
        key, raw, headers = fit(origin.key, raw, headers, MAX_REQUEST_SIZE)
        await self._send(dlq, key, raw, headers, partition)

    async def tick(self, partition: int, upto: datetime, token: str) -> None:
        """A tick record to the partition's ticks partition, outside any transaction."""
        value = encode_tick(upto, token)
        await self._producer().send(
            self._ticks, None, value, partition, None, None, transactional_id=None
        )

    async def _send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        partition: int,
    ) -> Ack:
        ack: Ack = await self._producer().send(
            topic,
            key,
            value,
            None,
            None,
            headers,
            transactional_id=self.transactional_id(partition),
        )
        return ack

    def transactional_id(self, partition: int) -> str | None:
        """The transactional id of `partition`'s unit of work (Faust's, per source partition);
        None under at-least-once."""
        if not self._exactly_once:
            return None
        app = self.topology.app
        group = app.assignor.group_for_topic(self._ticks)
        return f"{app.conf.id}-{group}-{partition}"

    def _producer(self) -> Any:
        """Faust's aiokafka producer, in both modes (`app.producer`, never the transaction
        manager): given a transactional id it sends through that partition's transactional
        producer, given none through its plain producer."""
        return self.topology.app.producer

    def _count(self, output: Output, now: datetime, timer: bool) -> None:
        m = self.metrics
        if isinstance(output, Escalation):
            m.escalations.labels(output.severity.value, str(output.step)).inc()
        elif isinstance(output, Breach):
            m.breaches.labels(output.target, output.severity.value, output.tier.value).inc()
        elif isinstance(output, UpdateDue):
            m.updates_due.labels(output.severity.value).inc()
        elif isinstance(output, MaintenanceNotice):
            m.notices.labels(output.type).inc()
        elif isinstance(output, DeadlineWarning):
            m.warnings.labels(output.target.value, output.severity.value).inc()
        elif isinstance(output, Unacknowledged):
            m.unacknowledged.labels(output.severity.value, str(output.step)).inc()
        elif isinstance(output, Acknowledged):
            latency = output.latency.total_seconds()
            m.acknowledgement.labels(output.severity.value, str(output.step)).observe(latency)
        elif isinstance(output, Retraction):
            m.retractions.labels(output.retracted_type).inc()
        elif isinstance(output, SurveyDue):
            m.surveys.labels(output.severity.value).inc()
        if timer:
            m.timer_lateness.observe(max((now - output.time).total_seconds(), 0.0))


def record_size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    """What the producer counts against its max_request_size for one record."""
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
    return size


def fit(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], limit: int
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """A record that fits in `limit` bytes: the same record if it does; else the record's own
    headers dropped if they alone do not leave room (the processor's `sla-*` ones stay), its
    key cut to KEY_KEPT bytes if longer, its value cut to what fits, and headers that say so.

    A record the producer refused would be lost: committed past, never dead-lettered. The cut
    one names what was cut, the original sizes and the value's SHA-256; the origin headers say
    where the whole record stays, for the topic's retention.
    """
    if record_size(key, value, headers) <= limit:
        return key, value, headers
    cut_key = key is not None and len(key) > KEY_KEPT
    kept_key = key[:KEY_KEPT] if cut_key and key is not None else key
    original = value or b""
    marks = [
        ("sla-original-key-bytes", str(len(key or b"")).encode()),
        ("sla-original-value-bytes", str(len(original)).encode()),
        ("sla-original-value-sha256", hashlib.sha256(original).hexdigest().encode()),
    ]
    worst = ("sla-truncated", b"headers,key,value")
    own = [(k, v) for k, v in headers if k.startswith("sla-")]
    cut_headers = record_size(kept_key, b"", [*headers, *marks, worst]) > limit // 2
    kept_headers = own if cut_headers else headers
    room = limit - record_size(kept_key, b"", [*kept_headers, *marks, worst])
    kept_value = original[: max(room - 8, 0)]  # 8: the value length's varint grows
    cut = [name for name, was in (("headers", cut_headers), ("key", cut_key),
                                  ("value", len(kept_value) < len(original))) if was]  # fmt: skip
    truncated = [*kept_headers, ("sla-truncated", ",".join(cut).encode()), *marks]
    return kept_key, kept_value if value is not None else None, truncated


def encode_tick(upto: datetime, token: str) -> bytes:
    return f"{micros(upto)} {token}".encode()


def parse_tick(raw: bytes) -> tuple[datetime, str] | None:
    """(instant, ownership token) of a tick record; None for anything else."""
    try:
        value, token = raw.decode().split(" ")
        return from_micros(int(value)), token
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None
