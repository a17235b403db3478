"""`python -m bench.run`: the options, the broker, the result's head, and processor.json/.md
(with --merge, only the sections run replace theirs in the existing file)."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, results
from bench import run as package
from bench.broker import broker
from bench.results import REPO
from bench.run.figures import CLOCK
from bench.run.report import markdown
from bench.run.runner import Bench
from bench.run.sections import main_async

PORT = 49092
DIRECTORY = "var/kafka-bench"

SECTION_KEYS = {
    "throughput": ("throughput", "ratios", "input"),
    "knobs": ("knobs", "knob_notes", "knobs_effective", "input"),
    "memory": ("memory", "memory_traced"),
    "profile": ("profile", "input"),
    "supplementary": ("supplementary", "supplementary_meta", "supplementary_ratios", "input"),
}


def merged(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`base` with the sections `new` ran replaced; the merge is recorded with its own load."""
    ran = [s for s in SECTION_KEYS if any(k in new for k in SECTION_KEYS[s][:1])]
    for section in ran:
        for key in SECTION_KEYS[section]:
            if key in new and (key != "input" or section != "supplementary"):
                base[key] = new[key]
    if "supplementary" in ran and "input" in new:
        base.setdefault("supplementary_meta", {})["input"] = new["input"]
    base.setdefault("merges", []).append(
        {k: new[k] for k in ("date", "command", "load", "git", "events", "repeat")}
        | {"sections": ran}
    )
    base["notes"] = sorted(set(base.get("notes", [])) | set(new.get("notes", [])))
    return base


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each (smoke)")
    parser.add_argument("--out", default="bench/results/", help="directory for the results")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--kafka-version", help="label for --bootstrap's broker version")
    parser.add_argument(
        "--events", type=int, help="throughput input size (default 50,000; quick 5,000)"
    )
    parser.add_argument(
        "--tickets", type=int, help="open tickets for memory (default 100,000; quick 10,000)"
    )
    parser.add_argument("--repeat", type=int, help="runs per figure (default 3; quick 1)")
    parser.add_argument("--sections", default="throughput,knobs,memory,profile")
    parser.add_argument("--merge", action="store_true",
                        help="update only the sections run in an existing processor.json")  # fmt: skip
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the tracemalloc run of the memory section")  # fmt: skip
    parser.add_argument("--candidates", help="comma-separated candidate keys to run (default all)")
    parser.add_argument(
        "--quix-python",
        default=str(REPO / "var/bench-quix-venv/bin/python"),
        help="a python with quixstreams installed (its own venv)",
    )
    parser.add_argument("--wait-quiet", type=float, default=1.0, metavar="LOAD",
                        help="before starting, wait (30 s polls, up to 10 min) for the 1-min load "
                             "to be at most LOAD (default 1.0; negative: do not wait)")  # fmt: skip
    args = parser.parse_args(argv)
    args.events = args.events or (5_000 if args.quick else 50_000)
    args.tickets = args.tickets or (10_000 if args.quick else 100_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.suffix = "-quick" if args.quick else ""
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)  # the profile writes there as it runs
    work = REPO / "var/bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    work.mkdir(parents=True, exist_ok=True)
    quix = Path(args.quix_python)
    with broker(args.bootstrap, args.kafka_version, PORT, DIRECTORY) as kafka:
        bench = Bench(kafka.bootstrap, kafka.version, kafka.pid, work,
                      quix if quix.exists() else None)  # fmt: skip
        result = start(args, argv, bench)
        try:
            results.wait_quiet(result, args.wait_quiet)
            asyncio.run(main_async(args, bench, result))
        finally:
            result["load"]["at_end"] = machine.loadavg()
            result["load"]["log"] = bench.load.entries
            save(args, result)


def start(args: argparse.Namespace, argv: Sequence[str] | None, bench: Bench) -> dict[str, Any]:
    """The result's head: what ran, where, on which broker and commit, which Quix Streams."""
    result = results.head("processor", "python -m bench.run", argv, quick=args.quick,
                          kafka_version=bench.kafka_version, events=args.events,
                          tickets=args.tickets, repeat=args.repeat, clock=CLOCK)  # fmt: skip
    if bench.quix_python is not None:
        found = subprocess.run([str(bench.quix_python), "-c",
                                "import importlib.metadata as m; print(m.version('quixstreams'))"],
                               capture_output=True, text=True)  # fmt: skip
        result["versions"]["quixstreams"] = found.stdout.strip() or "?"
    else:
        result["notes"].append(f"Quix Streams skipped: no {Path(args.quix_python)}")
    return result


def save(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """processor[-quick].json and .md in --out; with --merge, into the existing result."""
    out, stem = Path(args.out), f"processor{args.suffix}"
    path = out / f"{stem}.json"
    if args.merge and path.exists():
        result = merged(json.loads(path.read_text()), result)
    results.write(out, stem, result, markdown)
    print(f"bench: wrote {path} and .md", flush=True)
