"""Which partition owns a subject: Kafka's default (murmur2) partitioner, as the Java client uses."""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(subject: str, partitions: int) -> int:
    return int(murmur2(subject.encode()) & 0x7FFFFFFF) % partitions
