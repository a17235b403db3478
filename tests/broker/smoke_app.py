"""Minimal Faust app for the broker smoke test, run as a real worker:

    python -m faust -A tests.broker.smoke_app:app worker -l info

Relays every record of SMOKE_IN unchanged (key and value, raw bytes) to SMOKE_OUT and counts
records per key in a Table, so the worker also writes a compacted changelog topic
``<SMOKE_APP_ID>-counts-changelog``.

Environment (all set by tests/broker/test_smoke.py):
    SMOKE_BROKER       kafka://127.0.0.1:PORT
    SMOKE_APP_ID       consumer group / app id, unique per run
    SMOKE_IN           input topic
    SMOKE_OUT          output topic
    SMOKE_DATA_DIR     Faust data dir
    SMOKE_GUARANTEE    at_least_once (default) or exactly_once
"""

from __future__ import annotations

import os

import faust

_env = os.environ.get

app = faust.App(
    _env("SMOKE_APP_ID", "sla-broker-smoke"),
    broker=_env("SMOKE_BROKER", "kafka://127.0.0.1:9092"),
    datadir=_env("SMOKE_DATA_DIR", "var/faust-smoke"),
    store="memory://",
    processing_guarantee=_env("SMOKE_GUARANTEE", "at_least_once"),
    topic_partitions=1,
    topic_replication_factor=1,
    table_standby_replicas=0,
    web_enabled=False,
    broker_commit_interval=0.5,
)

source = app.topic(
    _env("SMOKE_IN", "smoke-in"),
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=1,
)
sink = app.topic(
    _env("SMOKE_OUT", "smoke-out"),
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=1,
)
counts = app.Table("counts", key_type=str, value_type=int, default=int, partitions=1)


@app.agent(source)
async def relay(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        key: bytes = event.key or b""
        counts[key.decode()] += 1
        await sink.send(key=key, value=event.value)
