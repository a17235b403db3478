"""The options of `python -m bench.timers` and the sizes they stand for (smaller with
--quick)."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

from bench.timers import __doc__ as DESCRIPTION


def variant(spec: str) -> tuple[str, int, bool]:
    """`rocksdb://:KILL+static` -> (store, signal number, static membership)."""
    store, _, how = spec.rpartition(":")
    sig, _, static = how.partition("+")
    if static not in ("", "static"):
        raise SystemExit(f"--variants: {spec!r}: only +static may follow the signal")
    return (
        store if store.endswith("://") else store + "://",
        getattr(signal, "SIG" + sig),
        bool(static),
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.timers",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add("--quick", action="store_true", help="small sizes, one run each (smoke)")
    add("--out", default="bench/results/", help="directory for the results")
    add("--bootstrap", help="use this broker instead of starting one")
    add("--kafka-version", help="label for --bootstrap's broker version")
    add(
        "--sections",
        default="precision,warnings,sparse,burst,instant,recovery",
        help="any of precision,warnings,sparse,burst,instant,recovery (warnings: precision of "
        "the warnings before the deadlines; sparse: precision at a few fires/s; instant: the "
        "burst at one single instant)",
    )
    add(
        "--sparse",
        help="sparse precision: DUE,WINDOW_S on the first size's state (default "
        "450,90: 5/s; quick 100,20)",
    )
    add(
        "--tickets",
        help="open tickets per precision (and warnings) size, comma-separated (default "
        "100000,1000000; quick 10000)",
    )
    add(
        "--due",
        type=int,
        help="deadlines due in the precision window (default 100,000; quick 10,000)",
    )
    add("--window", type=float, help="precision window, s (default 120; quick 20)")
    add("--rate", type=int, default=1000, help="ordinary events/s (default 1000)")
    add("--burst", type=int, help="burst deadlines (default 100,000; quick 10,000)")
    add(
        "--burst-workers",
        type=int,
        default=1,
        help="workers sharing the burst's partitions, one group (default 1)",
    )
    add(
        "--recovery-tickets",
        type=int,
        help="tickets in state for recovery (default 1,000,000; quick 10,000)",
    )
    add(
        "--overdue",
        type=int,
        help="deadlines due while the worker is down (default 10,000; quick 1,000)",
    )
    add(
        "--variants",
        default="rocksdb://:TERM,rocksdb://:KILL,memory://:TERM,rocksdb://:KILL+static",
        help="recovery restarts in turn, store:signal[+static] (+static: the worker runs as a "
        "static group member, SLA_GROUP_INSTANCE_ID, from a restart before that variant on)",
    )
    add("--repeat", type=int, help="runs per figure (default 3; quick 1)")
    add("--repeat-large", type=int, help="runs for precision sizes >= 500,000 (default 1)")
    add("--store", default="rocksdb://", choices=("rocksdb://", "memory://"))
    add("--render", action="store_true", help="only write timers.md again from timers.json")
    add(
        "--merge",
        action="store_true",
        help="replace only the sections run in an existing timers.json (the rest is kept)",
    )
    add(
        "--profile-burst",
        action="store_true",
        help="an extra burst run under py-spy (not in the medians)",
    )
    add(
        "--wait-quiet",
        type=float,
        default=1.0,
        metavar="LOAD",
        help="before starting, wait (30 s polls, up to 10 min) for the 1-min load to be at "
        "most LOAD (default 1.0; negative: do not wait)",
    )
    return p


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    q = args.quick
    args.sizes = [int(x) for x in (args.tickets or ("10000" if q else "100000,1000000")).split(",")]
    args.due = args.due or (10_000 if q else 100_000)
    args.window = args.window or (20.0 if q else 120.0)
    args.burst = args.burst or (10_000 if q else 100_000)
    args.recovery_tickets = args.recovery_tickets or (10_000 if q else 1_000_000)
    args.overdue = args.overdue or (1_000 if q else 10_000)
    args.repeat = args.repeat or (1 if q else 3)
    args.repeat_large = args.repeat_large or 1
    args.variants = [variant(v) for v in args.variants.split(",")]
    sparse_due, sparse_window = (args.sparse or ("100,20" if q else "450,90")).split(",")
    args.sparse_due, args.sparse_window = int(sparse_due), float(sparse_window)
    args.suffix = "-quick" if q else ""
    args.margin = 15.0 if q else 30.0  # s between the end of an event load and T0
    args.lead = 10.0  # s of ordinary ingest before T0
    args.drain_timeout = 180.0 if q else 900.0
    args.ready_timeout = 1800.0
    args.spread = 5.0  # s over which the recovery overdue deadlines fall due
    args.down_lead = 12.0 if q else 25.0  # s from the start of their load to the first of them
    args.kill_before = 3.0  # s from the stop to the first of them
    args.down_after = 3.0  # s from the last of them to the restart
    return args
