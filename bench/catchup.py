"""Catch-up of a backlog: a fresh worker on a week of history (decision 27's cost).

    python -m bench.catchup [--quick] [--events 1000000] [--bootstrap HOST:PORT] [--out DIR]

Publishes a random history (tests/histories.py, the seed's policy, every event type, times on
and next to the deadlines) of about EVENTS events over the last seven days, then starts one
worker (RocksDB, at-least-once) on a fresh consumer group and measures:
- drain: worker ready to its inputs committed up to their end (then it waits until fewer than
  50 outputs come in 5 s: the ticks held during the drain fire after it);
- outputs: how many, and how many replay (`--until` the end of the publish) gives, ids compared;
- how late deadlines fire during it: for outputs due before the worker started, emitted minus
  start; for those due while it caught up, emitted minus due (emitted = the output record's
  Kafka CreateTime); and the worker's own `sla_tick_hold_seconds`.
Starts its own broker (port 29192, var/kafka-catchup) unless --bootstrap is given. Writes
<out>/catchup.json and <out>/catchup.md (--quick: catchup-quick.*, 20k events).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import machine, results
from bench.broker import broker
from bench.results import REPO, percentiles
from bench.workers import DEFAULT_POLICY, PARTITIONS, create_worker_topics, metrics, processor_env
from processor.end_offsets import EndOffsets
from processor.replay import read_events, replay
from processor.sla.policy import load_policy
from processor.spawn import WorkerProcess
from tests.histories import histories

PORT = 29192
EVENTS_PER_TICKET = 6.2  # what the generator averages over a week


async def publish(bootstrap: str, env: dict[str, str], rows: list[tuple[str, bytes]]) -> None:
    topics = {"tickets": env["SLA_TOPIC_TICKETS"], "maintenance": env["SLA_TOPIC_MAINTENANCE"]}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50,
                                max_batch_size=1 << 20)  # fmt: skip
    await producer.start()
    try:
        for domain, value in rows:
            await producer.send(topics[domain], value, key=orjson.loads(value)["subject"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def lag(bootstrap: str, group: str, topics: list[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


async def outputs(bootstrap: str, topics: list[str]) -> list[tuple[int, dict[str, Any]]]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", group_id=None)  # fmt: skip
    await consumer.start()
    found: list[tuple[int, dict[str, Any]]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=3000):
            for records in batch.values():
                found.extend((r.timestamp, orjson.loads(r.value)) for r in records)
    finally:
        await consumer.stop()
    return found


async def settle(bootstrap: str, topics: list[str], quiet: float = 5.0, trickle: int = 50) -> None:
    """Return once fewer than `trickle` records were added to `topics` (sum of end offsets) in
    `quiet` seconds: the backlog's deadlines have fired; new ones keep falling due meanwhile."""
    ends = EndOffsets(bootstrap, None, read_committed=False)
    sources = [(topic, p) for topic in topics for p in range(PARTITIONS)]
    try:
        last = sum((await ends.ask(sources)).values())
        while True:
            await asyncio.sleep(quiet)
            total = sum((await ends.ask(sources)).values())
            if total - last < trickle:
                return
            last = total
    finally:
        await ends.close()


def spread(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), **percentiles(values, ("p50", "p99", "max"), digits=3)}


def run(bootstrap: str, events: int, work: Path) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    env = processor_env(bootstrap, f"catchup-{run_id}", work / run_id, "rocksdb://", "WARNING")
    asyncio.run(create_worker_topics(env))
    policy = load_policy(DEFAULT_POLICY)
    end = datetime.now(UTC) - timedelta(minutes=1)
    tickets = max(int(events / EVENTS_PER_TICKET), 10)
    started = time.monotonic()
    rows = histories(11, tickets=tickets, maintenances=tickets // 20,
                     start=end - timedelta(days=7), end=end, policy=policy)  # fmt: skip
    generated = time.monotonic() - started
    asyncio.run(publish(bootstrap, env, rows))
    published_at = datetime.now(UTC)
    expected = replay(read_events((v for _, v in rows), io.StringIO()), policy, published_at,
                      io.StringIO()).outputs  # fmt: skip
    worker = WorkerProcess(env, work / f"{run_id}.log", cwd=REPO)
    spawned = worker.start()
    try:
        inputs = [env["SLA_TOPIC_TICKETS"], env["SLA_TOPIC_MAINTENANCE"]]
        while asyncio.run(lag(bootstrap, env["SLA_APP_ID"], inputs)) > 0:
            time.sleep(0.5)
        drained = time.time() - spawned
        out_topics = [env[k] for k in env if k.startswith("SLA_TOPIC_") and "sla." in env[k]]
        out_topics.append(env["SLA_TOPIC_NOTICES"])
        # The ticks held during the drain fire after it: wait until the outputs settle.
        asyncio.run(settle(bootstrap, out_topics))
        hold = metrics(env["SLA_WEB_PORT"])
    finally:
        worker.stop(timeout=60)
    got = asyncio.run(outputs(bootstrap, out_topics))
    overdue, during = [], []
    for emitted_ms, ce in got:
        due = datetime.fromisoformat(ce["time"].replace("Z", "+00:00")).timestamp()
        if due <= spawned:
            overdue.append(emitted_ms / 1000 - spawned)
        else:
            during.append(emitted_ms / 1000 - due)
    cut = published_at.timestamp()
    got_ids = {ce["id"] for _, ce in got if datetime.fromisoformat(
        ce["time"].replace("Z", "+00:00")).timestamp() <= cut}  # fmt: skip
    want_ids = {o.id for o in expected}
    return {
        "events": len(rows), "tickets": tickets, "generate_seconds": round(generated, 1),
        "drain_seconds": round(drained, 1), "events_per_second": round(len(rows) / drained),
        "outputs": len(got), "replay_outputs": len(want_ids),
        "missing": len(want_ids - got_ids), "extra": len(got_ids - want_ids),
        "repeated": len(got) - len({ce["id"] for _, ce in got}),
        "overdue_at_start_emitted_after_start_s": spread(overdue),
        "due_during_catch_up_lateness_s": spread(during),
        "tick_hold_mean_s": round(hold["sla_tick_hold_seconds_sum"]
                                  / max(hold["sla_tick_hold_seconds_count"], 1), 3),
        "ticks": hold["sla_tick_hold_seconds_count"],
    }  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    r = result["run"]
    lines = [
        "# Catch-up of a backlog (bench/catchup.py)", "",
        f"{result['date']}, commit {result['git']['head'][:7]}, {result['nproc']} cores, Python "
        f"{result['python']}, Kafka {result['kafka_version']}.", "",
        f"A fresh worker (RocksDB, at-least-once, 4 partitions) on {r['events']:,} events of "
        f"{r['tickets']:,} tickets over seven days, published before it starts.", "",
        "| figure | value |", "|---|---|",
        f"| drain (spawn to inputs committed to their end) | {r['drain_seconds']} s "
        f"({r['events_per_second']:,} events/s) |",
        f"| outputs / replay's (ids) | {r['outputs']:,} / {r['replay_outputs']:,}; missing "
        f"{r['missing']}, extra {r['extra']}, repeated {r['repeated']} |",
        f"| deadlines overdue at start: emitted after start | "
        f"{json.dumps(r['overdue_at_start_emitted_after_start_s'])} |",
        f"| deadlines due during the catch-up: lateness | "
        f"{json.dumps(r['due_during_catch_up_lateness_s'])} |",
        f"| tick hold (decided to sent), mean over {int(r['ticks'])} ticks | "
        f"{r['tick_hold_mean_s']} s |",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k events: a smoke check")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--kafka-version", help="label for --bootstrap's broker version")
    parser.add_argument("--out", default="bench/results/")
    args = parser.parse_args(argv)
    events = 20_000 if args.quick else args.events
    work = REPO / "var" / "bench-catchup"
    work.mkdir(parents=True, exist_ok=True)
    result = results.head("catchup", "python -m bench.catchup", argv)
    with broker(args.bootstrap, args.kafka_version, PORT, "var/kafka-catchup") as kafka:
        result["kafka_version"] = kafka.version
        result["run"] = run(kafka.bootstrap, events, work)
    result["load"]["at_end"] = machine.loadavg()
    results.write(Path(args.out), "catchup-quick" if args.quick else "catchup", result, markdown)
    print(markdown(result))


if __name__ == "__main__":
    main()
