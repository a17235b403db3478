"""A year of a large desk through the commands that read history: replay, --compare, report.

    python -m bench.year [--tickets 1000000] [--desk FILE] [--out DIR]

Generates (bench/desk.py; kept in var/ and reused for the same size and seed) a year of
history, then runs, one after another, each as the console command would (a process of its
own, output to a file): `replay` under the seed's policy, `replay --compare` of the seed's
policy with a set renewed on 2026-07-01 (shorter high targets) whose customers in apac run on
Sydney business hours, and `report --html --json` under that set. Records wall time, events
per second and peak resident memory of each. Writes <out>/year.json and <out>/year.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import machine, results
from bench.desk import main as generate
from bench.results import REPO

EXAMPLES = REPO / "examples" / "policies" / "contracts"
SEED = REPO / "processor" / "sla" / "default_policy.toml"
SET = """# The seed's policy renewed on 2026-07-01, apac customers on Sydney business hours.
default = "standard"

[[policies.standard.versions]]
label = "2026h1"
effective_from = 2026-01-01T00:00:00Z

[[policies.standard.versions]]
label = "2026h2"
effective_from = 2026-07-01T00:00:00Z
[policies.standard.versions.overrides.response_targets]
high = {{ premium = "PT45M", select = "PT60M", basic = "PT90M" }}

[[policies.apac.versions]]
label = "2026"
effective_from = 2026-01-01T00:00:00Z
file = "{apac}"

[[select]]
policy = "apac"
region = ["apac"]
"""


def timed(command: list[str], stdout: Path) -> dict[str, Any]:
    """Wall seconds and peak RSS (MiB) of one process; its stderr's last lines on failure."""
    started = time.monotonic()
    with stdout.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, cwd=REPO)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command} failed: {errors.decode()[-2000:]}")
    return {
        "command": " ".join(command),
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "stderr_lines": errors.count(b"\n"),
        "output_bytes": stdout.stat().st_size,
    }


def run(tickets: int, desk: Path, out: Path) -> dict[str, Any]:
    result = results.head("year", "python -m bench.year", None, tickets=tickets)
    if not desk.exists():
        started = time.monotonic()
        generate([str(desk), "--tickets", str(tickets)])
        result["generate_seconds"] = round(time.monotonic() - started, 1)
    with desk.open("rb") as lines:
        events = sum(1 for _ in lines)
    result["events"] = events
    result["desk_bytes"] = desk.stat().st_size
    policy_set = out / "year-set.toml"
    out.mkdir(parents=True, exist_ok=True)
    policy_set.write_text(SET.format(apac=os.path.relpath(EXAMPLES / "apac.toml", out)))
    cli = [sys.executable, "-m", "processor"]
    work = REPO / "var" / "bench-year"
    work.mkdir(parents=True, exist_ok=True)
    runs = {
        "replay": timed([*cli, "replay", str(desk), "--no-progress"], work / "replay.jsonl"),
        "compare": timed(
            [
                *cli,
                "replay",
                str(desk),
                "--no-progress",
                "--json",
                "--compare",
                str(SEED),
                str(policy_set),
            ],
            work / "compare.json",
        ),
        "report": timed(
            [
                *cli,
                "report",
                str(desk),
                "--policy",
                str(policy_set),
                "--html",
                str(work / "report.html"),
                "--json",
                "-",
            ],
            work / "report.json",
        ),
    }
    for figures in runs.values():
        figures["events_per_second"] = round(events / figures["seconds"])
    result["runs"] = runs
    result["load"]["at_end"] = machine.loadavg()
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# A year of a large desk: {result['tickets']:,} tickets, {result['events']:,} events",
        "",
        f"{result['date']}, commit {result['git']['head'][:7]}, load at start "
        f"{result['load']['at_start']}, at end {result['load']['at_end']}. One run each.",
        "",
        "| command | wall | events/s | peak RSS |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in result["runs"].items():
        lines.append(
            f"| {name} | {figures['seconds']} s | {figures['events_per_second']:,} "
            f"| {figures['peak_rss_mib']:,} MiB |"
        )
    lines += ["", "Commands:", ""]
    lines += [f"- `{figures['command']}`" for figures in result["runs"].values()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--desk", type=Path, help="a history to reuse (default: generated)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "year")
    args = parser.parse_args(argv)
    desk = args.desk or REPO / "var" / f"desk-{args.tickets}.jsonl"
    desk.parent.mkdir(parents=True, exist_ok=True)
    result = run(args.tickets, desk, args.out)
    path = results.write(args.out, "year", result, markdown)
    print(markdown(result))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
