"""3. Recovery: a worker holding 1M tickets is stopped (SIGTERM, or SIGKILL) with K deadlines
due while it is down, and restarted on the same group and data dir: spawn to Ready, to the first
processed event, and to the last overdue output; index rebuild time; RSS after recovery."""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
from typing import Any

from bench import kafka, machine
from bench.kafka import OutputReader
from bench.timers.context import Ctx, now_s, recorded
from bench.timers.loading import check_sample, load_due, write_changelog
from bench.timers.outputs import timer_outputs
from bench.timers.traffic import Prober
from bench.timers.usage import Sampler
from bench.timers.worker import Worker

FIRST_STORE = "rocksdb://"


async def recovery(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    """One 1M-ticket state; each variant stops the running worker with K deadlines about to fall
    due, waits until they are overdue, and starts the next worker on the same group."""
    tickets = args.recovery_tickets
    worker = Worker(ctx, FIRST_STORE)
    out: dict[str, Any] = {
        "tickets": tickets,
        "overdue": args.overdue,
        "variants": [],
        "loadavg_before": ctx.load.note("recovery"),
    }
    sampler = Sampler(ctx.broker.pid)
    async with recorded(out, sampler.stop, worker.cleanup):
        out["load"] = await restored(ctx, args, worker, sampler)
        for n, (store, sig, static) in enumerate(args.variants):
            variant = await restart(ctx, args, worker, sampler, store, sig, static, n)
            out["variants"].append(variant)
            print(
                f"timers: recovery {store} {signal.Signals(sig).name}: {summary(variant)}",
                flush=True,
            )
            if "error" in variant:
                break
        out["changelog_records"] = await kafka.count(ctx.bootstrap, [worker.changelog])
    if "error" in out:
        print(f"timers: recovery FAILED {out['error'][:500]}", flush=True)
    return out


async def restored(
    ctx: Ctx, args: argparse.Namespace, worker: Worker, sampler: Sampler
) -> dict[str, Any]:
    """The state written to the changelog and restored by a first worker."""
    tickets, bulk = args.recovery_tickets, f"B{worker.run_id}"
    await worker.prepare(changelog=True)
    load = await write_changelog(ctx, worker, tickets, bulk)
    worker.start()
    sampler.follow(worker.pid)
    started = await worker.ready(args.ready_timeout)
    load |= {
        "restore": started,
        "restore_store": FIRST_STORE,
        "sample_check": await check_sample(worker, bulk, tickets),
        "rss_mib": machine.rss_mib(worker.pid),
    }
    print(
        f"timers: recovery: {tickets:,} tickets restored from the changelog in "
        f"{started['spawn_to_ready_s']} s ({FIRST_STORE}); sample "
        f"{load['sample_check']['ok']}/{load['sample_check']['checked']}",
        flush=True,
    )
    return load


async def restart(
    ctx: Ctx,
    args: argparse.Namespace,
    worker: Worker,
    sampler: Sampler,
    store: str,
    sig: int,
    static: bool,
    n: int,
) -> dict[str, Any]:
    """One variant: K overdue deadlines, the worker stopped with `sig`, restarted with `store`."""
    due_prefix, probe_prefix = f"O{worker.run_id}{n}", f"Q{worker.run_id}{n}"
    if static and "SLA_GROUP_INSTANCE_ID" not in worker.env:
        # The worker to be stopped must have joined under the id: restart it so (not measured).
        worker.stop(signal.SIGTERM)
        worker.env["SLA_GROUP_INSTANCE_ID"] = f"{worker.prefix}-0"
        worker.start(store)
        await worker.ready(args.ready_timeout)
    out: dict[str, Any] = {
        "store": store,
        "signal": signal.Signals(sig).name + (", static member" if static else ""),
        "previous_store": worker.env["SLA_STORE"],
        "loadavg_before": ctx.load.note(f"recovery {store} {sig}"),
    }
    reader = OutputReader(
        ctx.bootstrap, [worker.breaches, worker.escalations], [due_prefix, probe_prefix]
    )
    prober = Prober(ctx.bootstrap, worker.input, probe_prefix, interval=0.1)
    async with recorded(out, prober.stop, reader.stop):
        await reader.start()
        spawned = await down_and_up(ctx, args, worker, prober, store, sig, due_prefix, out)
        sampler.follow(worker.pid)
        out |= await worker.ready(args.ready_timeout)
        limit = now_s() + args.drain_timeout
        while reader.count(due_prefix) < args.overdue and now_s() < limit:
            worker.check_alive()
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        await prober.stop()
        out |= await afterwards(args, worker, reader, sampler, prober, spawned, n)
    return out


async def down_and_up(
    ctx: Ctx,
    args: argparse.Namespace,
    worker: Worker,
    prober: Prober,
    store: str,
    sig: int,
    due_prefix: str,
    out: dict[str, Any],
) -> float:
    """K deadlines spread over `args.spread` seconds; the worker is stopped `args.kill_before`
    seconds before the first. SIGTERM: the next worker is spawned `args.down_after` seconds
    after the last. SIGKILL: spawned at once, as a supervisor would; the dead member keeps the
    partitions until its session times out, so they fall due while nothing runs. The spawn
    instant."""
    overdue = args.overdue
    first_due = math.ceil(now_s() + overdue / ctx.load_rate + args.down_lead)
    dues = [first_due + args.spread * i / overdue for i in range(overdue)]
    out["load"] = await load_due(ctx, worker, due_prefix, dues)
    await asyncio.sleep(max(0.0, first_due - args.kill_before - now_s()))
    killed = now_s()
    out["stop_s"] = worker.stop(sig)
    out["stopped_before_first_due_s"] = round(first_due - now_s(), 1)
    await prober.start()
    if sig != signal.SIGKILL:
        await asyncio.sleep(max(0.0, first_due + args.spread + args.down_after - now_s()))
    out["group_members_at_spawn"] = await kafka.group_members(ctx.bootstrap, worker.group)
    out["changelog_records_at_restart"] = await kafka.count(ctx.bootstrap, [worker.changelog])
    spawned = worker.start(store)
    out["downtime_s"] = round(spawned - killed, 1)
    out["spawn_after_last_due_s"] = round(spawned - (first_due + args.spread), 1)
    return spawned


async def afterwards(
    args: argparse.Namespace,
    worker: Worker,
    reader: OutputReader,
    sampler: Sampler,
    prober: Prober,
    spawned: float,
    n: int,
) -> dict[str, Any]:
    probes = reader.get(f"Q{worker.run_id}{n}")
    due = reader.get(f"O{worker.run_id}{n}")
    answered = sorted(ts / 1000 for _, _, ts, _ in probes if ts / 1000 >= spawned)
    found = timer_outputs(due)
    out = found | {
        "spawn_to_first_event_s": round(answered[0] - spawned, 3) if answered else None,
        "probes_sent_while_down": sum(1 for t in prober.sent.values() if t < spawned),
        "probe_latency_after_spawn": prober.latencies(probes, spawned),
        "missing": args.overdue - found["unique"],
        "fired_before_restart": sum(1 for _, _, ts, _ in due if ts / 1000 < spawned),
    }
    if found["first_emitted"] is not None:
        out["spawn_to_first_overdue_s"] = round(found["first_emitted"] - spawned, 3)
        out["spawn_to_last_overdue_s"] = round(found["last_emitted"] - spawned, 3)
    m = await asyncio.to_thread(worker.metrics)
    return out | {
        "metric_rebuild_seconds": m.get("sla_deadline_index_rebuild_seconds_sum"),
        "metric_rebuild_count": m.get("sla_deadline_index_rebuild_seconds_count"),
        "pending_deadlines": m.get("sla_pending_deadlines"),
        "open_tickets": m.get("sla_open_tickets"),
        "usage_spawn_to_done": sampler.usage(spawned, found["last_emitted"] or now_s()),
        "rss_mib_after_recovery": round(await machine.settled_rss(worker.pid or 0) / 2**20, 1),
        **worker.restore_phases(),
    }


def summary(variant: dict[str, Any]) -> str:
    if "error" in variant:
        return f"FAILED {variant['error'][:500]}"
    return (
        f"ready {variant['spawn_to_ready_s']} s, first event "
        f"{variant['spawn_to_first_event_s']} s, last overdue "
        f"{variant['spawn_to_last_overdue_s']} s, rebuild {variant['rebuild_seconds']} s"
    )
