"""The settings reach the Faust app they configure; table keys route like the subject, whose
partition is Kafka's murmur2."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2
from hypothesis import given
from hypothesis import strategies as st

from processor import partitioning
from processor.partitioning import partition_of
from processor.settings import Settings
from processor.topics import mismatch_error, mismatches
from processor.topology import build, copartitioned


def test_timeouts_and_batching_come_from_the_settings() -> None:
    settings = Settings(
        store="memory://",
        session_timeout_seconds=30,
        producer_linger_seconds=0.02,
        commit_interval_seconds=1.5,
        group_instance_id="worker-0",
    )
    conf = build(settings).app.conf
    # The broker's id names the web address Faust records in each assignment.
    url = conf.canonical_url
    assert conf.consumer_group_instance_id == f"worker-0-{url.host}-{url.port}"
    assert conf.broker_session_timeout == 30
    assert conf.broker_heartbeat_interval == 1.0
    assert conf.producer_linger == 0.02
    assert conf.broker_commit_interval == 1.5


def test_defaults_favour_latency() -> None:
    conf = build(Settings(store="memory://")).app.conf
    assert conf.broker_session_timeout == 10
    assert conf.producer_linger == 0
    assert conf.consumer_group_instance_id is None  # dynamic membership unless asked


@pytest.mark.parametrize("bad", ["", "pod 0", "pod:0", "x" * 240])
def test_a_group_instance_id_kafka_would_refuse_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="group_instance_id"):
        Settings(store="memory://", group_instance_id=bad)


def test_a_member_id_longer_than_kafka_takes_is_refused() -> None:
    with pytest.raises(ValueError, match="249 at most"):
        Settings(store="memory://", group_instance_id="w" * 200, web_host="h" * 60)


def test_an_address_kafka_would_refuse_in_an_id_is_replaced() -> None:
    settings = Settings(
        store="memory://", group_instance_id="w", web_host="sla+host", web_port=7000
    )
    assert build(settings).app.conf.consumer_group_instance_id == "w-sla_host-7000"


@pytest.mark.parametrize("subject", ["T-1", "ticket/ä-42", "M" * 200])
def test_table_keys_route_to_the_subjects_partition(subject: str) -> None:
    """The changelog key is what Faust's table routing hashes: it must be the subject's bytes
    (a `str` key would be JSON-encoded, quotes and all, and hash to another partition)."""
    topology = build(Settings(store="memory://", topic_partitions=8))
    for table in (topology.tickets, topology.maintenances):
        # table_route passes the URL's text; the stream writes the subject's bytes.
        for text_or_bytes in (subject, subject.encode()):
            key = table.changelog_topic.prepare_key(text_or_bytes, None)[0]
            assert key == subject.encode()
            assert (murmur2(key) & 0x7FFFFFFF) % 8 == partition_of(subject, 8)


@given(st.binary(max_size=300))
def test_murmur2_is_kafkas(data: bytes) -> None:
    """The partitioner's hash agrees with aiokafka's (the Java client's) on any bytes."""
    assert partitioning.murmur2(data) == murmur2(data)


@pytest.mark.parametrize(
    ("key", "expected"),
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2, as signed 32-bit values.
    [(b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
     (b"a-little-bit-longer-string", -1486304829),
     (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), (b"abc", 479470107)],
)  # fmt: skip
def test_murmur2_matches_the_java_clients_vectors(key: bytes, expected: int) -> None:
    assert partitioning.murmur2(key) == expected & 0xFFFFFFFF


def test_the_copartitioned_topics_are_the_agents_sources_and_the_changelogs() -> None:
    settings = Settings(store="memory://", app_id="a", topic_tickets="t", topic_maintenance="m")
    topology = build(settings)
    changelogs = [
        table.changelog_topic.get_topic_name()
        for table in (topology.tickets, topology.maintenances, topology.watermarks)
    ]
    assert copartitioned(settings) == [*topology.source.topics, *changelogs]


def test_a_mismatch_names_each_topic_and_ignores_missing_ones() -> None:
    counts = {"t": 8, "m": 4, "a-ticks": None, "a-rekeyed": 9}
    found = mismatches(8, counts)
    assert found == ["m has 4 partitions", "a-rekeyed has 9 partitions"]
    message = str(mismatch_error(8, found))
    assert message.startswith(
        "m has 4 partitions; a-rekeyed has 9 partitions; SLA_TOPIC_PARTITIONS is 8."
    )
    assert mismatches(8, {"t": 8, "m": None}) == []
    # A worker started just after a broker restart saw a changelog with 0 partitions (its
    # metadata not served yet) and stopped as if the topic were partitioned otherwise.
    assert mismatches(8, {"t": 8, "a-watermarks-changelog": 0}) == []
