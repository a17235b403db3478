"""Which partition owns a subject: Kafka's default (murmur2) partitioner, as the Java client uses."""

from __future__ import annotations

from struct import Struct

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF
_WORD = Struct("<I")


def partition_of(subject: str, partitions: int) -> int:
    return partition_of_key(subject.encode(), partitions)


def partition_of_key(key: bytes, partitions: int) -> int:
    """The partition of a record keyed `key` (a table key: the subject's UTF-8 bytes)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`) as an unsigned 32-bit
    value, equal to aiokafka's: every event's subject is hashed (and every key of a memory
    store's rebuild), and this takes the 4-byte words whole, 1.6 us against 2.8 us for
    aiokafka's byte-wise loop on a 16-byte subject."""
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    for (k,) in _WORD.iter_unpack(data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[whole + 2] << 16
        if extra >= 2:
            h ^= data[whole + 1] << 8
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)
