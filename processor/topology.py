"""Faust declarations: the app, its topics and tables (behaviour lives in `processor.stream`)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import faust
from faust.types import TableT, TopicT

from processor.settings import Settings
from processor.sla.outputs import OutputTopic

# The largest record the producer sends (Faust's default, stated: dead letters are cut to fit).
MAX_REQUEST_SIZE = 1_000_000
# The largest record batch the producer makes for one partition. A tick's outputs and table
# writes are a few hundred records of a few hundred bytes per partition: at aiokafka's 16 KiB
# default each batch after the first waits for the one before it to leave, and a 100k burst
# drained in 54.2 s against 43.6 s at 512 KiB (bench.timers --sections burst, side by side,
# 2026-12-03, bench/results/batches-2026-12-03/).
MAX_BATCH_SIZE = 512 * 1024

# RocksDB's default 2 GiB block cache would dwarf a 2-core worker; state values are small.
ROCKSDB_OPTIONS = {"block_cache_size": 64 * 1024 * 1024}


class Topic(Protocol):
    def get_topic_name(self) -> str: ...


class Table(Protocol):
    """The part of a Faust table (bytes to bytes) the shell uses; a dict is one."""

    def get(self, key: bytes, /) -> bytes | None: ...
    def __setitem__(self, key: bytes, value: bytes, /) -> None: ...
    def pop(self, key: bytes, default: None, /) -> bytes | None: ...
    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class Wiring(Protocol):
    """What the stream's rooms use of the topology (`Topology` in the worker; tests give a
    dataclass of dicts). `app` is the Faust app: its producer, assignor, consumer."""

    @property
    def app(self) -> Any: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def partitions(self) -> int: ...
    @property
    def rekeyed(self) -> Topic: ...
    @property
    def ticks(self) -> Topic: ...
    @property
    def outputs(self) -> Mapping[OutputTopic, Topic]: ...
    @property
    def dead_letters(self) -> Mapping[str, Topic]: ...
    @property
    def tickets(self) -> Table: ...
    @property
    def maintenances(self) -> Table: ...
    @property
    def watermarks(self) -> Table: ...


@dataclass(frozen=True, slots=True)
class Topology:
    app: faust.App
    settings: Settings
    source: TopicT  # every topic the agent reads: inputs, re-keyed records, timer ticks
    rekeyed: TopicT
    ticks: TopicT
    outputs: dict[OutputTopic, TopicT]
    dead_letters: dict[str, TopicT]  # input topic name -> its dead-letter topic
    tickets: TableT[bytes, bytes]
    maintenances: TableT[bytes, bytes]
    watermarks: TableT[bytes, bytes]

    @property
    def partitions(self) -> int:
        return self.settings.topic_partitions


def broker_url(servers: str) -> str:
    return ";".join(f"kafka://{s.strip()}" for s in servers.removeprefix("kafka://").split(","))


def credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            keyfile = settings.kafka_ssl_keyfile
            context.load_cert_chain(settings.kafka_ssl_certfile, keyfile)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


def _raw_topic(
    app: faust.App, *names: str, partitions: int | None = None, **options: Any
) -> TopicT:
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        **options,
    )


def _table(app: faust.App, name: str, settings: Settings) -> TableT[bytes, bytes]:
    # Faust derives a table's serializers from key_type/value_type only (a `schema` is not
    # consulted): without value_type=bytes, values would be JSON-decoded on recovery and reads.
    # Keys are bytes (the subject in UTF-8): a `str` key would be JSON-encoded in the changelog
    # ("T-1" with the quotes), and Faust's table routing would hash that, not the subject.
    table: TableT[bytes, bytes] = app.Table(
        name,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        options=ROCKSDB_OPTIONS if settings.store == "rocksdb://" else None,
    )
    return table


WILDCARDS = frozenset({"0.0.0.0", "::", "[::]", ""})


def advertised_host(settings: Settings) -> str:
    """The host other workers reach this one's web port at: SLA_WEB_ADVERTISED_HOST, else
    SLA_WEB_HOST unless it is a wildcard, else the local address this host reaches the first
    bootstrap server from (a UDP socket's connect sends nothing: it only picks the route). In a
    container that is the container's address on the broker's network; a pod is better given
    its address explicitly (deploy/kubernetes)."""
    if settings.web_advertised_host:
        return settings.web_advertised_host
    if settings.web_host not in WILDCARDS:
        return settings.web_host
    first = settings.kafka_bootstrap_servers.removeprefix("kafka://").split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), int(port), type=socket.SOCK_DGRAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.connect(address)
            local = str(probe.getsockname()[0])
    except (OSError, UnicodeError):  # UnicodeError: a host label IDNA refuses
        return socket.gethostname()
    return f"[{local}]" if ":" in local else local


def build(settings: Settings) -> Topology:
    if settings.web_advertised_host is None and settings.web_host in WILDCARDS:
        settings = settings.model_copy(update={"web_advertised_host": advertised_host(settings)})
    app = faust.App(
        settings.app_id,
        broker=broker_url(settings.kafka_bootstrap_servers),
        broker_credentials=credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir),
        processing_guarantee=settings.processing_guarantee.value,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_allow_declare=True,
        web_host=advertised_host(settings),  # what Faust tells the other workers
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        # Only the project's views are served (processor.web): Faust's table view would answer
        # any table key with the raw stored state, its router view lists the topology.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        autodiscover=False,
        table_standby_replicas=0,
        # A crashed worker keeps its partitions, and their deadlines, until its session times
        # out: Faust's 60 s default would stall timers that long (and a restarted worker as
        # well). Heartbeats come from the consumer's own thread, so a busy stream cannot
        # miss them.
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(1.0, settings.session_timeout_seconds / 3),
        consumer_group_instance_id=settings.static_member_id,
        broker_commit_interval=settings.commit_interval_seconds,
        producer_linger=settings.producer_linger_seconds,
        producer_max_request_size=MAX_REQUEST_SIZE,
        producer_max_batch_size=MAX_BATCH_SIZE,
        consumer_metadata_max_age_ms=int(settings.metadata_max_age_seconds * 1000),
        producer_metadata_max_age_ms=int(settings.metadata_max_age_seconds * 1000),
        # Faust would read un-prefixed variables (WEB_BIND, PROCESSING_GUARANTEE, BROKER_URL...)
        # from the environment over these arguments: the SLA_ settings alone configure the app.
        env={},
    )
    partitions = settings.topic_partitions
    inputs = [settings.topic_tickets, settings.topic_maintenance]
    rekeyed = _raw_topic(app, f"{settings.app_id}-rekeyed", partitions=partitions, internal=True)
    ticks = _raw_topic(app, f"{settings.app_id}-ticks", partitions=partitions, internal=True)
    source = _raw_topic(app, *inputs, *rekeyed.topics, *ticks.topics)
    outputs = output_topics(settings)
    return Topology(
        app=app,
        settings=settings,
        source=source,
        rekeyed=rekeyed,
        ticks=ticks,
        outputs={kind: _raw_topic(app, name) for kind, name in outputs.items()},
        dead_letters={name: _raw_topic(app, f"{name}.dlq") for name in inputs},
        tickets=_table(app, TABLES[0], settings),
        maintenances=_table(app, TABLES[1], settings),
        watermarks=_table(app, TABLES[2], settings),
    )


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options for plain aiokafka clients (topic creation, the demo, tests)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.removeprefix("kafka://"),
        "security_protocol": settings.kafka_security_protocol,
    }
    found = credentials(settings)
    if isinstance(found, faust.SASLCredentials):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=found.password,
            ssl_context=found.ssl_context,
        )
    elif isinstance(found, faust.SSLCredentials):
        options["ssl_context"] = found.context
    return options


TABLES = ("tickets", "maintenances", "watermarks")


def copartitioned(settings: Settings) -> list[str]:
    """The topics partitioned like the tables' state: those the agent reads and the tables'
    changelogs. Each must have exactly SLA_TOPIC_PARTITIONS partitions, for life."""
    app_id = settings.app_id
    return [
        settings.topic_tickets,
        settings.topic_maintenance,
        f"{app_id}-rekeyed",
        f"{app_id}-ticks",
        *(f"{app_id}-{table}-changelog" for table in TABLES),
    ]


def output_topics(settings: Settings) -> dict[OutputTopic, str]:
    """The topic of each kind of output."""
    return {
        OutputTopic.ESCALATIONS: settings.topic_escalations,
        OutputTopic.UPDATES_DUE: settings.topic_updates_due,
        OutputTopic.BREACHES: settings.topic_breaches,
        OutputTopic.NOTICES: settings.topic_notices,
        OutputTopic.WARNINGS: settings.topic_warnings,
        OutputTopic.ACKNOWLEDGEMENTS: settings.topic_acknowledgements,
        OutputTopic.RETRACTIONS: settings.topic_retractions,
        OutputTopic.SURVEYS: settings.topic_surveys,
    }


def topic_names(settings: Settings) -> list[str]:
    """Every topic the processor reads or writes, internal ones included (all with N partitions)."""
    inputs = [settings.topic_tickets, settings.topic_maintenance]
    outputs = list(output_topics(settings).values())
    internal = [f"{settings.app_id}-rekeyed", f"{settings.app_id}-ticks"]
    return [*inputs, *(f"{name}.dlq" for name in inputs), *outputs, *internal]
