"""Loading a worker's state: tickets whose deadlines are measured as ticket.opened events the
worker processes; bulk tickets straight into the tickets changelog, byte for byte what the worker
would have stored, restored at start-up and checked through /tickets/{id}."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from bench import kafka, workload
from bench.kafka import Record
from bench.timers.context import Ctx, at_ms, low_target, now_s
from bench.timers.worker import Worker
from bench.workers import PARTITIONS
from processor import codec
from processor.partitioning import partition_of
from processor.sla import engine
from processor.sla.policy import Policy
from schemas.cloudevents import parse_event

CHUNK = 50_000  # tickets encoded at a time


def states(records: Iterable[Record], policy: Policy) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, table value) for ticket.opened records: what the worker would store."""
    out = []
    for key, raw in records:
        decision = engine.decide(None, parse_event(raw), policy)
        assert decision.state is not None
        due = engine.next_deadline(decision.state, policy)
        value = codec.encode_state(decision.state, due, policy.fingerprint)
        out.append((partition_of(key.decode(), PARTITIONS), key, value))
    return out


async def write_changelog(
    ctx: Ctx, worker: Worker, count: int, prefix: str, policy: Policy | None = None
) -> dict[str, Any]:
    """`count` open low-severity tickets (deadline hours ahead) straight into the changelog, as
    a worker under `policy` (default: the context's) stores them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.bootstrap, acks="all", linger_ms=20, max_batch_size=1024 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    encode_s = 0.0
    size = 0
    try:
        for first in range(0, count, CHUNK):
            t = time.perf_counter()
            n = min(CHUNK, count - first)
            records = workload.open_tickets(n, prefix, workload.utcnow(), first=first)
            items = states(records, policy or ctx.policy)
            encode_s += time.perf_counter() - t
            pending = []
            for partition, key, value in items:
                size += len(key) + len(value)
                pending.append(
                    await producer.send(worker.changelog, value, key=key, partition=partition)
                )
            await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return {
        "method": "changelog",
        "tickets": count,
        "bytes": size,
        "encode_s": round(encode_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


async def check_sample(worker: Worker, prefix: str, count: int) -> dict[str, Any]:
    """GET /tickets/{id} for 25 random changelog-loaded tickets: found and open."""
    rng = random.Random(7)
    ids = sorted({f"{prefix}-{rng.randrange(count):08d}" for _ in range(min(count, 25))})
    ok, bad = 0, []
    for ticket in ids:
        status, body = await asyncio.to_thread(worker.get, f"/tickets/{ticket}")
        if status == 200 and body.get("phase") == "open":
            ok += 1
        else:
            bad.append([ticket, status, (body.get("deadlines") or {}).get("initial_response")])
    return {"checked": len(ids), "ok": ok, "failed": bad[:5]}


async def load_events(
    ctx: Ctx, worker: Worker, records: Sequence[Record], timeout: float = 1800.0
) -> dict[str, Any]:
    """Produce ticket.opened records to the input and wait until the group has committed them."""
    started = now_s()
    seconds = await kafka.produce(ctx.bootstrap, worker.input, records)
    targets = await kafka.end_offsets(ctx.bootstrap, [worker.input])
    total = sum(targets.values())
    async with kafka.OffsetWatch(ctx.bootstrap, worker.group, targets) as watch:
        limit = time.monotonic() + timeout
        while await watch.committed() < total:
            worker.check_alive()
            if time.monotonic() > limit:
                raise RuntimeError(f"loading not committed after {timeout:.0f} s")
            await asyncio.sleep(0.2)
    elapsed = now_s() - started
    return {
        "method": "events",
        "tickets": len(records),
        "produce_s": round(seconds, 1),
        "seconds": round(elapsed, 1),
        "events_per_s": round(len(records) / max(elapsed, 1e-6)),
    }


async def load_due(
    ctx: Ctx, worker: Worker, prefix: str, dues: Sequence[float], lead: timedelta | None = None
) -> dict[str, Any]:
    """One low-severity ticket per instant of `dues` (epoch seconds), opened `lead` before it
    (default the low response target: its breach falls due then), processed by the worker; the
    load rate is learnt for the next T0."""
    due = [at_ms(d) for d in dues]
    lead = low_target(ctx.policy) if lead is None else lead
    records = workload.open_tickets(len(due), prefix, workload.utcnow(), due, lead)
    loaded = await load_events(ctx, worker, records)
    ctx.learn_rate(loaded)
    return loaded
