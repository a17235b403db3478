"""A bare Faust agent on the input topic: one table entry per event (BENCH_TABLE=1; value = the
raw bytes, key = the record key) or nothing at all (BENCH_TABLE=0). It forwards nothing.

Configured like the processor's app (topology.build): raw topics, memory or rocksdb store,
earliest offsets, acks=all, no standbys, web server on, at-least-once. BENCH_PRODUCER_LINGER
(seconds) sets Faust's producer_linger.
"""

from __future__ import annotations

import faust

from bench.candidates.common import Marker, env

ROCKSDB_OPTIONS = {"block_cache_size": 64 * 1024 * 1024}  # as processor.topology


def main() -> None:
    store = env("BENCH_STORE", "memory://")
    app = faust.App(
        env("BENCH_GROUP"),
        broker=f"kafka://{env('BENCH_BOOTSTRAP')}",
        store=store,
        datadir=env("BENCH_DATA_DIR"),
        processing_guarantee="at_least_once",
        topic_partitions=int(env("BENCH_PARTITIONS", "4")),
        topic_replication_factor=1,
        topic_allow_declare=True,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=int(env("BENCH_WEB_PORT")),
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        autodiscover=False,
        table_standby_replicas=0,
        env={},
    )
    linger = env("BENCH_PRODUCER_LINGER", "")
    if linger:  # the same late conf assignment as bench/candidates/processor_tuned.py
        app.conf.producer_linger = float(linger)
    topic = app.topic(env("BENCH_INPUT"), key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")  # fmt: skip
    table = None
    if env("BENCH_TABLE", "1") == "1":
        table = app.Table(
            "last",
            key_type=str,
            value_type=bytes,
            partitions=int(env("BENCH_PARTITIONS", "4")),
            options=ROCKSDB_OPTIONS if store == "rocksdb://" else None,
        )
    marker = Marker()

    async def agent(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            marker.seen()
            if table is not None:
                key = event.message.key
                table[key.decode() if isinstance(key, bytes) else str(key)] = event.value

    app.agent(topic, name="bare")(agent)
    faust.Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
