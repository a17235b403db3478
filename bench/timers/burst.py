"""2. Burst: B deadlines due within one second (or at one single instant): T0 to the first and
the last output, outputs per second, and the latency of probe events meanwhile."""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench import kafka, machine
from bench.kafka import OutputReader
from bench.profiling import start_spy
from bench.timers.context import Ctx, now_s, recorded
from bench.timers.loading import load_due
from bench.timers.outputs import timer_outputs
from bench.timers.traffic import Prober
from bench.timers.usage import Sampler
from bench.timers.worker import Worker
from processor.spawn import WorkerProcess, stop_process
from processor.stream import TICK_BATCH

FIELDS = (
    "t0_to_first_output_s",
    "t0_to_last_output_s",
    "outputs_per_s",
    "early",
    "duplicates",
    "missing",
    "lateness_ms.p50",
    "lateness_ms.p99",
    "lateness_ms.max",
    "probes_during_drain.p50",
    "probes_during_drain.p99",
    "probes_during_drain.max",
    "drain_usage.worker_cores",
    "drain_usage.foreign_cores",
    "ticks_during_drain",
)


async def burst_run(
    ctx: Ctx,
    args: argparse.Namespace,
    profile: Path | None = None,
    spread: float = 1.0,
    timeout: float | None = None,
) -> dict[str, Any]:
    """`args.burst` deadlines due over [T0, T0 + spread) at whole milliseconds (spread 0: all at
    the very instant T0); the drain is followed for at most `timeout` seconds after T0; with
    `profile`, py-spy records the worker from T0 - 1 s to the end of the drain."""
    count = args.burst
    worker = Worker(ctx, ctx.store)
    out: dict[str, Any] = {
        "deadlines": count,
        "spread_s": spread,
        "store": ctx.store,
        "tick_batch": TICK_BATCH,
        "workers": args.burst_workers,
        "loadavg_before": ctx.load.note("burst"),
    }
    due_prefix, probe_prefix = f"D{worker.run_id}", f"P{worker.run_id}"
    sampler = Sampler(ctx.broker.pid)
    reader = OutputReader(
        ctx.bootstrap, [worker.breaches, worker.escalations], [due_prefix, probe_prefix]
    )
    prober = Prober(ctx.bootstrap, worker.input, probe_prefix)
    siblings: list[WorkerProcess] = []

    async def stop_siblings() -> None:
        for child in siblings:
            child.stop(signal.SIGTERM, 60)

    async with recorded(out, prober.stop, reader.stop, sampler.stop, stop_siblings, worker.cleanup):
        await worker.prepare()
        worker.start()
        sampler.follow(worker.pid)
        out["startup"] = await worker.ready(args.ready_timeout)
        for n in range(1, args.burst_workers):
            siblings.append(await worker.sibling(n, args.ready_timeout))
        if siblings:
            # The group settles: every member has its share. The drain's `worker_cores` are
            # the first worker's; the siblings' CPU is in `foreign_cores`.
            await asyncio.sleep(5.0)
        await reader.start()
        t0 = ctx.plan_t0(count, args.margin)
        loaded = await load_due(
            ctx, worker, due_prefix, [t0 + spread * i / count for i in range(count)]
        )
        loaded["slack_before_t0_s"] = round(t0 - now_s(), 1)
        out["load"] = loaded
        await asyncio.sleep(max(0.0, t0 - 5 - now_s()))
        await prober.start()
        last = await drain(ctx, args, worker, reader, t0, profile, timeout, out)
        await asyncio.sleep(1.0)  # the last probes' answers
        await prober.stop()
        out |= await outcome(ctx, worker, reader, sampler, prober, t0, last, out)
    print(f"timers: burst {count:,} over {spread} s: {summary(out)}", flush=True)
    return out


async def drain(
    ctx: Ctx,
    args: argparse.Namespace,
    worker: Worker,
    reader: OutputReader,
    t0: float,
    profile: Path | None,
    timeout: float | None,
    out: dict[str, Any],
) -> float:
    """Follow the drain until every output is read back or `timeout` (default
    args.drain_timeout) after T0; the instant of the last output (of the timeout if it hit)."""
    count, due_prefix = out["deadlines"], f"D{worker.run_id}"
    spy: subprocess.Popen[bytes] | None = None
    try:
        if profile is not None:
            await asyncio.sleep(max(0.0, t0 - 1 - now_s()))
            spy = start_spy(worker.pid or 0, {"format": "raw", "output": profile, "rate": 100})
        limit = t0 + (timeout or args.drain_timeout)
        while reader.count(due_prefix) < count and now_s() < limit:
            worker.check_alive()
            await asyncio.sleep(0.05)
        drained = now_s()
    finally:
        if spy is not None:
            stop_process(spy, signal.SIGINT, 60)
    out["timed_out"] = reader.count(due_prefix) < count
    if not out["timed_out"]:
        return float(timer_outputs(reader.get(due_prefix))["last_emitted"])
    m = await asyncio.to_thread(worker.metrics)
    out["followed_s"] = round(drained - t0, 1)
    out["pending_deadlines_at_timeout"] = m.get("sla_pending_deadlines")
    out["timer_outputs_counted_by_worker"] = m.get("sla_timer_lateness_seconds_count")
    return drained


async def outcome(
    ctx: Ctx,
    worker: Worker,
    reader: OutputReader,
    sampler: Sampler,
    prober: Prober,
    t0: float,
    last: float,
    out: dict[str, Any],
) -> dict[str, Any]:
    due = reader.get(f"D{worker.run_id}")
    found = timer_outputs(due)
    found["missing"] = out["deadlines"] - found["unique"]
    if not out["timed_out"]:
        first = found["first_emitted"]
        found["t0_to_first_output_s"] = round(first - t0, 3)
        found["t0_to_last_output_s"] = round(last - t0, 3)
        found["outputs_per_s"] = round(found["unique"] / max(last - first, 1e-3))
    per_second = Counter(int(ts / 1000 - t0) for _, _, ts, _ in due)
    ticks = await kafka.timestamps_since(ctx.bootstrap, worker.ticks, int((t0 - 1) * 1000))
    probes = reader.get(f"P{worker.run_id}")
    return found | {
        "drain_usage": sampler.usage(t0, last),
        "loop_stalls": worker.loop_stalls(t0 - 1, last + 1),
        "worker_cores_per_s": sampler.busy_profile(t0 - 2, last + 2),
        "outputs_per_second_of_drain": sorted(per_second.items()),
        "ticks_during_drain": sum(1 for _, ts in ticks if ts / 1000 <= last),
        "tick_offsets_s": [round(ts / 1000 - t0, 3) for _, ts in ticks if ts / 1000 <= last + 0.5][
            :40
        ],
        "ticks_per_partition": dict(Counter(p for p, ts in ticks if ts / 1000 <= last)),
        "probes_during_drain": prober.latencies(probes, t0, last),
        "probes_before_t0": prober.latencies(probes, 0, t0),
        "rss_mib_after": machine.rss_mib(worker.pid),
    }


def summary(out: dict[str, Any]) -> str:
    if "error" in out:
        return f"FAILED {out['error'][:500]}"
    return (
        f"first {out.get('t0_to_first_output_s')} s, last {out.get('t0_to_last_output_s')} s, "
        f"{out.get('outputs_per_s')} outputs/s, early {out.get('early')}, missing "
        f"{out.get('missing')}{', TIMED OUT' if out.get('timed_out') else ''}"
    )
