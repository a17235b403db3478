"""1. Precision: a worker holding N open tickets fires D deadlines spread uniformly over a window
while ordinary events are ingested at a steady rate; the lateness of every timer output.

What is measured is a `Timed`: the low tickets' initial-response breaches (`breaches`, the
default policy), or the warnings before them (`warnings`: the default policy plus a 50 % warning
for low tickets, so each due ticket is opened 4 h before its due instant)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import kafka, machine, workload
from bench.kafka import OutputReader, Record
from bench.results import REPO
from bench.timers.context import Ctx, now_s, recorded
from bench.timers.loading import check_sample, load_due, write_changelog
from bench.timers.outputs import TICK_HOLD, histogram_delta, timer_outputs
from bench.timers.traffic import Pacer
from bench.timers.usage import Sampler
from bench.timers.worker import Worker
from bench.workers import DEFAULT_POLICY
from processor.sla import engine
from processor.sla.policy import Policy, load_policy
from schemas.cloudevents import parse_event

FIELDS = (
    "lateness_ms.p50",
    "lateness_ms.p90",
    "lateness_ms.p99",
    "lateness_ms.p99_9",
    "lateness_ms.max",
    "early",
    "duplicates",
    "missing",
    "outputs",
    "usage.worker_cores",
    "usage.foreign_cores",
    "ingest.events_per_s",
    "input_lag_at_end",
    "input_caught_up_s",
    "ticks",
    "worker_histogram.mean_ms",
    "window_end_to_last_output_s",
    "rss_mib_after",
    "pending_deadlines_at_t0",
    "startup.spawn_to_ready_s",
)

# The policy section of the warnings runs, appended to the default policy's text.
WARNINGS_RULE = """
[warnings.low]
percent = [50]
targets = ["initial_response"]
"""


@dataclass(frozen=True)
class Timed:
    """The timer output a precision run measures: the worker's policy, the topic the reader
    follows, and how long before its due instant a measured ticket is opened."""

    name: str  # "precision" or "warnings": the run's label
    type: str  # the output's CloudEvent type
    topic_setting: str  # the worker's variable naming the topic followed
    policy_file: Path
    policy: Policy
    lead: timedelta  # ticket.opened time -> the output's due instant

    def record(self) -> dict[str, Any]:
        file = self.policy_file
        return {
            "type": self.type,
            "topic_setting": self.topic_setting,
            "policy_file": str(file.relative_to(REPO) if file.is_relative_to(REPO) else file),
            "policy_fingerprint": self.policy.fingerprint,
            "lead_s": self.lead.total_seconds(),
        }


def first_timer(policy: Policy, type_: str) -> timedelta:
    """From a low ticket's opening to its first timer output, which must be one `type_` output
    (checked with the engine for each tier the runs open tickets in)."""
    opened = workload.utcnow().replace(microsecond=0)
    leads = set()
    for _, raw in workload.open_tickets(3, "LEAD", opened):
        state = engine.decide(None, parse_event(raw), policy).state
        assert state is not None
        at = engine.next_deadline(state, policy)
        fired = [] if at is None else engine.advance(state, at, policy).outputs
        if at is None or [o.type for o in fired] != [type_] or fired[0].time != at:
            raise RuntimeError(f"a low ticket's first timer output is not one {type_}: {fired}")
        leads.add(at - opened)
    if len(leads) != 1:
        raise RuntimeError(f"a low ticket's first {type_} differs by tier: {leads}")
    return leads.pop()


def breaches(ctx: Ctx) -> Timed:
    """The low tickets' initial-response breaches, under the default policy."""
    lead = first_timer(ctx.policy, "sla.breach")
    return Timed("precision", "sla.breach", "SLA_TOPIC_BREACHES", DEFAULT_POLICY, ctx.policy, lead)


def warnings(ctx: Ctx) -> Timed:
    """The low tickets' 50 % warnings, under the default policy plus WARNINGS_RULE (written to
    the run's work directory, kept with its logs)."""
    path = ctx.work / "warnings_policy.toml"
    path.write_text(DEFAULT_POLICY.read_text() + WARNINGS_RULE)
    policy = load_policy(path)
    lead = first_timer(policy, "sla.warning")
    return Timed("warnings", "sla.warning", "SLA_TOPIC_WARNINGS", path, policy, lead)


async def precision_run(
    ctx: Ctx,
    args: argparse.Namespace,
    tickets: int,
    mix: Sequence[Record],
    timed: Timed,
    due: int | None = None,
    window: float | None = None,
) -> dict[str, Any]:
    """One run on a fresh worker: `due` (default args.due) of `tickets` fall due over `window`
    seconds (default args.window) after T0; the others hours later. `timed`: the outputs
    measured."""
    due_count = min(tickets, due or args.due)
    window = window or args.window
    worker = Worker(ctx, ctx.store, timed.policy_file)
    out: dict[str, Any] = {
        "tickets": tickets,
        "due": due_count,
        "window_s": window,
        "store": ctx.store,
        "ingest_rate": args.rate,
        "measured": timed.record(),
        "loadavg_before": ctx.load.note(f"{timed.name} {tickets}"),
    }
    sampler = Sampler(ctx.broker.pid)
    reader = OutputReader(ctx.bootstrap, [worker.env[timed.topic_setting]], [f"D{worker.run_id}"])
    async with recorded(out, reader.stop, sampler.stop, worker.cleanup):
        loads = await start(ctx, args, worker, sampler, tickets - due_count, timed.policy, out)
        await reader.start()
        t0 = ctx.plan_t0(due_count, args.margin)
        dues = [t0 + window * i / due_count for i in range(due_count)]
        loaded = await load_due(ctx, worker, f"D{worker.run_id}", dues, timed.lead)
        loaded["slack_before_t0_s"] = round(t0 - now_s(), 1)
        out["load"] = [*loads, loaded]
        if loaded["slack_before_t0_s"] < 2:
            out["notes"] = ["loading overran T0: lateness includes the load"]
        done = await measure(ctx, args, worker, reader, mix, t0, window, out)
        out |= outcome(worker, reader, sampler, t0, window, done, due_count)
    print(f"timers: {timed.name} {tickets:,}: {summary(out)}", flush=True)
    return out


async def start(
    ctx: Ctx,
    args: argparse.Namespace,
    worker: Worker,
    sampler: Sampler,
    ballast: int,
    policy: Policy,
    out: dict[str, Any],
) -> list[dict[str, Any]]:
    """The worker started on `ballast` tickets written to its changelog (opened now, stored as
    under the worker's `policy`) and ready; how they were loaded."""
    bulk = f"B{worker.run_id}"
    await worker.prepare(changelog=ballast > 0)
    loads = [await write_changelog(ctx, worker, ballast, bulk, policy)] if ballast else []
    worker.start()
    sampler.follow(worker.pid)
    out["startup"] = await worker.ready(args.ready_timeout)
    if ballast:
        loads[-1]["restore_s"] = out["startup"]["spawn_to_ready_s"]
        out["sample_check"] = await check_sample(worker, bulk, ballast)
    return loads


async def measure(
    ctx: Ctx,
    args: argparse.Namespace,
    worker: Worker,
    reader: OutputReader,
    mix: Sequence[Record],
    t0: float,
    window: float,
    out: dict[str, Any],
) -> float:
    """From `args.lead` seconds before T0, ingest at `args.rate` until every due output is read
    back (or the drain times out); the instant that happened."""
    ticks_before = await kafka.count(ctx.bootstrap, [worker.ticks])
    await asyncio.sleep(max(0.0, t0 - args.lead - now_s()))
    pacer = Pacer(ctx.bootstrap, worker.input, mix, args.rate)
    await pacer.start()
    try:
        await asyncio.sleep(max(0.0, t0 - 1 - now_s()))
        before = await asyncio.to_thread(worker.metrics)
        out["pending_deadlines_at_t0"] = before.get("sla_pending_deadlines")
        out["open_tickets_at_t0"] = before.get("sla_open_tickets")
        due_prefix, due_count = f"D{worker.run_id}", out["due"]
        limit = t0 + window + args.drain_timeout
        while reader.count(due_prefix) < due_count and now_s() < limit:
            worker.check_alive()
            await asyncio.sleep(0.25)
        done = now_s()
    finally:
        out["ingest"] = await pacer.stop()
    after = await asyncio.to_thread(worker.metrics)
    out["worker_histogram"] = histogram_delta(before, after)
    out["worker_tick_hold"] = histogram_delta(before, after, TICK_HOLD)
    out["ticks"] = await kafka.count(ctx.bootstrap, [worker.ticks]) - ticks_before
    out |= await caught_up(ctx, worker)
    return done


async def caught_up(ctx: Ctx, worker: Worker) -> dict[str, Any]:
    """Did the worker keep up with the ingest? Seconds from the ingest's stop until its input
    is committed (the commit interval, 2.8 s, is the floor)."""
    ends = await kafka.end_offsets(ctx.bootstrap, [worker.input])
    async with kafka.OffsetWatch(ctx.bootstrap, worker.group, ends) as watch:
        stopped = now_s()
        lag = sum(ends.values()) - await watch.committed()
        while await watch.committed() < sum(ends.values()) and now_s() < stopped + 120:
            await asyncio.sleep(0.1)
        return {"input_lag_at_end": lag, "input_caught_up_s": round(now_s() - stopped, 1)}


def outcome(
    worker: Worker,
    reader: OutputReader,
    sampler: Sampler,
    t0: float,
    window: float,
    done: float,
    due_count: int,
) -> dict[str, Any]:
    found = timer_outputs(reader.get(f"D{worker.run_id}"))
    last = found["last_emitted"]
    return found | {
        "missing": due_count - found["unique"],
        "window_end_to_last_output_s": round(last - (t0 + window), 3) if last else None,
        "usage": sampler.usage(t0, done),
        "loop_stalls": worker.loop_stalls(t0 - 1, done),
        "rss_mib_after": machine.rss_mib(worker.pid),
        "data_dir_mib": round(machine.dir_size(Path(worker.env["SLA_DATA_DIR"])) / 2**20, 1),
    }


def summary(out: dict[str, Any]) -> str:
    if "error" in out:
        return f"FAILED {out['error'][:500]}"
    lm = out["lateness_ms"]
    return (
        f"p50 {lm['p50']} ms, p99 {lm['p99']} ms, max {lm['max']} ms, early {out['early']}, "
        f"outputs {out['outputs']:,}/{out['due']:,}"
    )
