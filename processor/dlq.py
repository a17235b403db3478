"""Dead letters: list and inspect them, and send chosen ones back to their origin topic.

A dead letter carries the rejected record (key, value, its own headers) and the processor's
headers: why (`sla-error-*`) and where it came from (`sla-origin-*`). A redrive sends the record
back to its origin topic, as it came, with one header more, `sla-redrive-of` (the dead letter's
origin: topic/partition/offset); records of the origin topic that already carry that marker are
not sent again, so a redrive can be repeated safely. A dead letter cut to fit (`sla-truncated`)
is never redriven: its whole record is only in the origin topic.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from processor.settings import Settings
from processor.topics import partitions_of
from processor.topology import client_options

MARKER: Final = "sla-redrive-of"
READ_TIMEOUT_SECONDS: Final = 120.0
_OWN: Final = ("sla-error-", "sla-origin-", "sla-truncated", "sla-original-")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    partition: int
    offset: int
    timestamp: int  # milliseconds
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    size: int = 0  # the value's bytes (kept when the value is not)

    def header(self, name: str) -> str | None:
        """The last header of that name: the processor's own come after the record's."""
        for key, value in reversed(self.headers):
            if key == name:
                return (value or b"").decode(errors="replace")
        return None

    @property
    def reason(self) -> str:
        return self.header("sla-error-reason") or "unknown"

    @property
    def origin(self) -> str:
        """topic/partition/offset of the rejected record."""
        parts = (self.header(f"sla-origin-{n}") for n in ("topic", "partition", "offset"))
        return "/".join(part or "?" for part in parts)

    @property
    def truncated(self) -> bool:
        return self.header("sla-truncated") is not None

    def upstream(self) -> list[tuple[str, bytes]]:
        """The record's own headers, without the processor's."""
        return [(k, v) for k, v in self.headers if not k.startswith(_OWN) and k != MARKER]

    def summary(self) -> dict[str, Any]:
        """What `dlq list` prints: ids and sizes, never the record's contents."""
        return {
            "partition": self.partition,
            "offset": self.offset,
            "time": datetime.fromtimestamp(self.timestamp / 1000, UTC).isoformat(),
            "reason": self.reason,
            "error": self.header("sla-error-class"),
            "origin": self.origin,
            "bytes": max(self.size, len(self.value or b"")),
            "truncated": self.truncated,
        }


def shown(letter: DeadLetter) -> dict[str, Any]:
    """What `dlq show` prints: the summary, the headers, the key and the value (as text when it
    is UTF-8, else base64)."""
    return {
        **letter.summary(),
        "headers": [[k, (v or b"").decode(errors="replace")] for k, v in letter.headers],
        "key": None if letter.key is None else letter.key.decode(errors="replace"),
        **_value(letter.value),
    }


def _value(value: bytes | None) -> dict[str, Any]:
    if value is None:
        return {"value": None}
    try:
        return {"value": value.decode()}
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode()}


def selected(
    letters: Iterable[DeadLetter], reason: str | None, since: datetime | None
) -> list[DeadLetter]:
    floor = None if since is None else since.timestamp() * 1000
    return [
        d
        for d in letters
        if (reason is None or d.reason == reason) and (floor is None or d.timestamp >= floor)
    ]


def counts(letters: Iterable[DeadLetter]) -> dict[str, int]:
    return dict(sorted(Counter(d.reason for d in letters).items()))


async def read(settings: Settings, topic: str, *, values: bool = True) -> list[DeadLetter]:
    """Every record of `topic` up to its end offsets when called (without their values unless
    `values`: a listing keeps only sizes)."""
    partitions = (await partitions_of(settings, [topic])).get(topic)
    if not partitions:
        raise LookupError(f"no topic {topic}")
    consumer = _consumer(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return await _until_end(consumer, tps, lambda r: _letter(r, values))
    finally:
        await consumer.stop()


async def read_one(settings: Settings, topic: str, partition: int, offset: int) -> DeadLetter:
    """The record at one offset; LookupError if there is none."""
    if partition not in (await partitions_of(settings, [topic])).get(topic, []):
        raise LookupError(f"no partition {partition} of topic {topic}")
    consumer = _consumer(settings)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        ends = await consumer.end_offsets([tp])
        if offset >= ends[tp]:
            raise LookupError(f"no dead letter at {topic}/{partition}/{offset}")
        record = await asyncio.wait_for(consumer.getone(tp), READ_TIMEOUT_SECONDS)
        if record.offset != offset:  # a transaction marker or an aborted record was there
            raise LookupError(f"no dead letter at {topic}/{partition}/{offset}")
        return _letter(record, True)
    finally:
        await consumer.stop()


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                            isolation_level="read_committed")  # fmt: skip


async def redriven(settings: Settings, letters: list[DeadLetter]) -> set[str]:
    """Markers already on the origin topics (from the earliest of `letters` on)."""
    by_topic: dict[str, int] = {}
    for letter in letters:
        topic = letter.header("sla-origin-topic")
        if topic:
            by_topic[topic] = min(letter.timestamp, by_topic.get(topic, letter.timestamp))
    if not by_topic:
        return set()
    found = await partitions_of(settings, list(by_topic))
    tps = [TopicPartition(topic, p) for topic, ps in found.items() for p in ps]
    if not tps:
        return set()
    consumer = _consumer(settings)
    await consumer.start()
    try:
        consumer.assign(tps)
        starts = await consumer.offsets_for_times({tp: by_topic[tp.topic] for tp in tps})
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            found = starts.get(tp)
            consumer.seek(tp, found.offset if found is not None else ends[tp])
        markers = await _until_end(consumer, tps, _marker)
        return {m for m in markers if m is not None}
    finally:
        await consumer.stop()


async def redrive(settings: Settings, letters: list[DeadLetter]) -> list[DeadLetter]:
    """Send each letter's record back to its origin topic with the marker; the ones sent."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                enable_idempotence=True)  # fmt: skip
    await producer.start()
    sent = []
    try:
        for letter in letters:
            topic = letter.header("sla-origin-topic")
            assert topic is not None  # plan() keeps only letters with an origin
            headers = [*letter.upstream(), (MARKER, letter.origin.encode())]
            await producer.send_and_wait(topic, letter.value, key=letter.key, headers=headers)
            sent.append(letter)
    finally:
        await producer.stop()
    return sent


@dataclass(frozen=True, slots=True)
class Plan:
    send: list[DeadLetter]
    done_before: list[DeadLetter]  # their marker is on the origin topic already
    truncated: list[DeadLetter]
    no_origin: list[DeadLetter]


def plan(letters: list[DeadLetter], markers: set[str]) -> Plan:
    send, done, cut, lost = [], [], [], []
    seen: set[str] = set()
    for letter in letters:
        if letter.header("sla-origin-topic") is None:
            lost.append(letter)
        elif letter.truncated:
            cut.append(letter)
        elif letter.origin in markers or letter.origin in seen:
            done.append(letter)
        else:
            seen.add(letter.origin)
            send.append(letter)
    return Plan(send, done, cut, lost)


async def _until_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition], make: Any) -> list[Any]:
    ends = await consumer.end_offsets(tps)
    pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
    found: list[Any] = []
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"could not read {sorted(map(str, pending))} to their end")
        batches = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, records in batches.items():
            found.extend(make(r) for r in records if r.offset < ends[tp])
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return found


def _letter(record: Any, values: bool) -> DeadLetter:
    size = len(record.value or b"")
    return DeadLetter(record.partition, record.offset, record.timestamp, record.key,
                      record.value if values else None, tuple(record.headers or ()),
                      size)  # fmt: skip


def _marker(record: Any) -> str | None:
    for key, value in record.headers or ():
        if key == MARKER:
            return str((value or b"").decode(errors="replace"))
    return None
