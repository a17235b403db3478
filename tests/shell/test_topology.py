"""The tables' changelog keys are what Faust's table routing hashes: they must be the subject."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2

from processor.partitioning import partition_of
from processor.settings import Settings
from processor.topology import build


@pytest.mark.parametrize("subject", ["T-1", "ticket/ä-42", "M" * 200])
def test_table_keys_route_to_the_subjects_partition(subject: str) -> None:
    topology = build(Settings(store="memory://", topic_partitions=8))
    for table in (topology.tickets, topology.maintenances):
        # table_route passes the URL's text; the stream writes the subject's bytes.
        for given in (subject, subject.encode()):
            key = table.changelog_topic.prepare_key(given, None)[0]
            assert key == subject.encode()
            assert (murmur2(key) & 0x7FFFFFFF) % 8 == partition_of(subject, 8)
