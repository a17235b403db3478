"""`python -m bench.timers`: the options, the sections in order, and the result files."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, results, workload
from bench.broker import broker
from bench.profiling import top_functions
from bench.results import REPO
from bench.timers import burst, precision
from bench.timers.context import Ctx
from bench.timers.goals import goals_table
from bench.timers.options import parse
from bench.timers.recovery import recovery
from bench.timers.report import markdown
from bench.workers import PARTITIONS
from processor.sla.policy import load_policy
from processor.stream import TICK_BATCH

PORT = 29092
BROKER_DIR = "var/kafka-timers"
SECTIONS = (
    "precision",
    "precision_warnings",
    "precision_sparse",
    "burst",
    "burst_instant",
    "recovery",
)

CLOCK = (
    "Timer lateness = the output record's Kafka timestamp (CreateTime, set by the processor's "
    "producer when it sent the output, ms resolution) minus the output's `time` (its due "
    "instant; every due instant is a whole millisecond, so truncation cannot fake an early "
    "fire). Outputs are read back from the breaches topic (the warnings topic for the "
    "warnings runs) by a plain aiokafka consumer "
    "(read_committed); percentiles are nearest-rank over every output of the run. Worker CPU "
    "is from /proc (utime+stime); `foreign` = machine busy time minus worker, broker and this "
    "runner. Spawn times are the runner's wall clock at Popen; log instants are the worker's "
    "own JSON log timestamps (same clock)."
)
LOADING = [
    "Tickets whose deadlines are measured (precision D, burst, recovery overdue) are "
    "produced as ticket.opened events to the worker's input and processed by the worker; "
    "the runner waits for the group's committed offsets to reach the end offsets, then "
    "for T0 (placed from the observed load rate plus a margin; each run records its slack).",
    "Bulk tickets (precision N - D, the recovery state) are written straight to "
    "`<app_id>-tickets-changelog` (compacted, 4 partitions): key = subject UTF-8 bytes, "
    "value = processor.codec.encode_state(state, engine.next_deadline(state), "
    "policy.fingerprint) with state = engine.decide(None, ticket.opened).state, "
    "partition = murmur2(subject) % 4 (processor.partitioning); checked byte-identical to "
    "what the worker writes for the same event. A fresh worker restores them at start-up "
    "and a sample is read back through GET /tickets/{id} (recorded per run).",
]


# -- the sections -------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]], fields: Sequence[str]) -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    return {
        "median": {f: results.median_field(ok, f) for f in fields},
        "ok_runs": len(ok),
        "runs": runs,
    }


async def precision_section(
    ctx: Ctx, args: argparse.Namespace, timed: precision.Timed | None = None
) -> dict[str, Any]:
    """Per size: the precision runs of `timed` (default the breaches)."""
    timed = timed or precision.breaches(ctx)
    mix = workload.ticket_mix(
        int(args.rate * (args.window + args.lead + 120)), ctx.policy, workload.utcnow()
    )
    found = {}
    for size in args.sizes:
        repeat = args.repeat_large if size >= 500_000 else args.repeat
        runs = [await precision.precision_run(ctx, args, size, mix, timed) for _ in range(repeat)]
        found[str(size)] = summarize(runs, precision.FIELDS)
    return found


async def warnings_section(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    """The precision runs, measuring the warnings before the deadlines instead."""
    return await precision_section(ctx, args, precision.warnings(ctx))


async def sparse_section(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    mix = workload.ticket_mix(
        int(args.rate * (args.sparse_window + args.lead + 120)), ctx.policy, workload.utcnow()
    )
    due, window = args.sparse_due, args.sparse_window
    timed = precision.breaches(ctx)
    runs = [
        await precision.precision_run(ctx, args, args.sizes[0], mix, timed, due, window)
        for _ in range(args.repeat)
    ]
    return summarize(runs, precision.FIELDS)


async def burst_section(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    runs = [await burst.burst_run(ctx, args) for _ in range(args.repeat)]
    found = summarize(runs, burst.FIELDS)
    if args.profile_burst:  # collapsed stacks, kept with the run's logs
        raw = ctx.work / "burst.profile.txt"
        extra = await burst.burst_run(ctx, args, profile=raw)
        found["profile"] = {
            "t0_to_last_output_s": extra.get("t0_to_last_output_s"),
            "error": extra.get("error"),
        }
        if raw.exists():
            found["profile"] |= top_functions(raw) | {"collapsed": str(raw.relative_to(REPO))}
    return found


async def instant_section(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    """All at one instant: more than TICK_BATCH deadlines of a partition at the same
    microsecond; followed for a minute at most."""
    return await burst.burst_run(ctx, args, spread=0.0, timeout=60.0)


RUNS: dict[str, tuple[str, Callable[[Ctx, argparse.Namespace], Any]]] = {
    "precision": ("precision", precision_section),
    "warnings": ("precision_warnings", warnings_section),
    "sparse": ("precision_sparse", sparse_section),
    "burst": ("burst", burst_section),
    "instant": ("burst_instant", instant_section),
    "recovery": ("recovery", recovery),
}


async def run_sections(args: argparse.Namespace, ctx: Ctx, result: dict[str, Any]) -> None:
    """Each section asked for, in order; the commit at its start and at its end is recorded."""
    wanted = set(args.sections.split(","))
    heads = result.setdefault("section_git", {})
    for option, (key, section) in RUNS.items():
        if option in wanted:
            start = results.git_state().get("head")
            result[key] = await section(ctx, args)
            heads[key] = [start, results.git_state().get("head")]


# -- the result files ---------------------------------------------------------------------------


def merged(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`base` with the sections `new` ran replaced (the replaced ones are kept under
    `replaced`, with the commits they ran on); the merge is recorded with its own load."""
    ran = [key for key in SECTIONS if key in new]
    old_heads = base.setdefault("section_git", {})
    for key in ran:
        if key in base:
            heads = old_heads.get(key) or [base.get("git", {}).get("head")] * 2
            base.setdefault("replaced", {}).setdefault(key, []).append(
                {"git": heads, "result": base[key]}
            )
        base[key] = new[key]
        old_heads[key] = new.get("section_git", {}).get(key)
    base.setdefault("merges", []).append(
        {k: new.get(k) for k in ("date", "command", "load", "git", "params", "elapsed_min")}
        | {"sections": ran}
    )
    base["notes"] = list(dict.fromkeys([*base.get("notes", []), *new.get("notes", [])]))
    base["notes"].append(
        f"sections {', '.join(ran)} written by `{new['command']}` at {new['date']} "
        f"(load at its start {new['load']['at_start']}, at its end {new['load'].get('at_end')})"
    )
    return base


def params(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "store",
        "sizes",
        "due",
        "rate",
        "burst",
        "recovery_tickets",
        "overdue",
        "repeat",
        "repeat_large",
    )
    return {name: getattr(args, name) for name in names} | {
        "window_s": args.window,
        "lead_s": args.lead,
        "margin_s": args.margin,
        "spread_s": args.spread,
        "down_after_s": args.down_after,
        "partitions": PARTITIONS,
        "tick_batch": TICK_BATCH,
        "variants": [
            [s, signal.Signals(g).name + ("+static" if static else "")]
            for s, g, static in args.variants
        ],
    }


def notes(args: argparse.Namespace) -> list[str]:
    found = []
    if any(size > args.due for size in args.sizes):
        found.append(
            f"precision: whatever N, {args.due:,} deadlines fall due in the {args.window:.0f} s "
            "window (the design's 1M case spread all 1M over 120 s, ~8,300 fires/s: several "
            "times the processor's event throughput, a drain test that section 2 measures); N - "
            "D tickets are due 8 h later, so the 1M case measures the same firing rate with a "
            "10x larger state and deadline index"
        )
    if args.repeat_large < args.repeat and any(s >= 500_000 for s in args.sizes):
        found.append(
            f"precision sizes >= 500,000: {args.repeat_large} run(s) (time cost), not {args.repeat}"
        )
    return found


def render(out: Path, suffix: str) -> None:
    """timers.md again from timers.json (after a change to the report)."""
    found = json.loads((out / f"timers{suffix}.json").read_text())
    found["goals"] = goals_table(found)
    (out / f"timers{suffix}.md").write_text(markdown(found) + "\n")
    print(f"timers: wrote {out / f'timers{suffix}.md'}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    out = Path(args.out)
    if args.render:
        render(out, args.suffix)
        return
    work = REPO / "var/bench" / f"timers-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
    work.mkdir(parents=True, exist_ok=True)
    result = results.head(
        "timers",
        "python -m bench.timers",
        argv,
        quick=args.quick,
        params=params(args),
        goals=[],
        clock=CLOCK,
        loading=LOADING,
    )
    result["notes"] += notes(args)
    began = time.monotonic()
    with broker(args.bootstrap, args.kafka_version, PORT, BROKER_DIR) as kafka:
        result["kafka_version"] = kafka.version
        ctx = Ctx(kafka, work, load_policy(), args.store)
        try:
            results.wait_quiet(result, args.wait_quiet)
            asyncio.run(run_sections(args, ctx, result))
        finally:
            finish(args, out, result, ctx, began)


def finish(
    args: argparse.Namespace, out: Path, result: dict[str, Any], ctx: Ctx, began: float
) -> None:
    result["load"] |= {"at_end": machine.loadavg(), "log": ctx.load.entries}
    head = results.git_state().get("head")
    if head != result["git"].get("head"):
        result["notes"].append(
            f"the repository's HEAD moved during the run ({result['git'].get('head', '?')[:10]}"
            f" -> {str(head)[:10]}): workers spawned after the move ran the newer code"
        )
    result["elapsed_min"] = round((time.monotonic() - began) / 60, 1)
    result["notes"] += ctx.notes
    path = out / f"timers{args.suffix}.json"
    if args.merge and path.exists():
        result = merged(json.loads(path.read_text()), result)
    result["goals"] = goals_table(result)
    results.write(out, f"timers{args.suffix}", result, markdown)
    print(f"timers: wrote {path} and .md", flush=True)
