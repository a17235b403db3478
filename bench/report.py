"""How long `sla-processor report` takes on a large history: generated ticket lives (the engine
benchmark's, `bench.workload.lives`) written as JSONL, then each phase timed: read and replay,
figures, the document, HTML, JSON and CSV; and the command as a whole."""

from __future__ import annotations

import argparse
import gc
import io
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bench import machine, results, workload
from processor.attainment.command import Request, run
from processor.attainment.compute import of_replay
from processor.attainment.render_data import document, to_csv, to_json
from processor.attainment.render_html import render
from processor.replay import read_events, replay
from processor.sla.policy import load_policy

_T = TypeVar("_T")


def _timed(phases: dict[str, float], name: str, work: Callable[[], _T]) -> _T:
    started = time.perf_counter()
    value = work()
    phases[name] = round(time.perf_counter() - started, 3)
    return value


def _phases(events: Path) -> tuple[dict[str, float], dict[str, int]]:
    policy = load_policy()
    phases: dict[str, float] = {}
    with events.open("rb") as source:
        result = _timed(
            phases, "read_and_replay", lambda: replay(read_events(source, io.StringIO()), policy,
                                                      None, io.StringIO())
        )  # fmt: skip
    gc.freeze()  # as the command does
    figures = _timed(phases, "compute", lambda: of_replay(result))
    doc = _timed(phases, "document", lambda: document(figures, result.events))
    html = _timed(phases, "html", lambda: render(doc))
    data = _timed(phases, "json", lambda: to_json(doc))
    table = _timed(phases, "csv", lambda: to_csv(doc))
    sizes = {"events": result.events, "tickets": len(result.tickets),
             "outputs": len(result.outputs), "html_bytes": len(html.encode()),
             "json_bytes": len(data), "csv_bytes": len(table.encode())}  # fmt: skip
    return phases, sizes


def measure(tickets: int, seed: int, argv: Sequence[str] | None) -> dict[str, Any]:
    result = results.head("report", "python -m bench.report", argv, tickets=tickets, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        events = Path(folder) / "events.jsonl"
        records = workload.lives(tickets, load_policy(), seed, "RPT")
        events.write_bytes(b"".join(raw + b"\n" for _, raw in records))
        result["input_bytes"] = events.stat().st_size
        result["phases_seconds"], result["sizes"] = _phases(events)
        out = Path(folder)
        request = Request(events, None, None, False, out / "r.html", out / "r.json", out / "r.csv")
        started = time.perf_counter()
        run(request)
        result["command_seconds"] = round(time.perf_counter() - started, 3)
    result["peak_rss_mib"] = round(machine.own_peak_rss_mib(), 1)
    return result


def table(result: dict[str, Any]) -> str:
    phases = result["phases_seconds"]
    sizes = result["sizes"]
    lines = [
        f"# sla-processor report on {result['tickets']:,} generated tickets",
        "",
        f"{sizes['events']:,} events ({result['input_bytes'] / 1e6:.1f} MB), "
        f"{sizes['outputs']:,} outputs; commit {result['git']['head'][:7]}, {result['date']}.",
        "",
        "| phase | seconds |",
        "|---|---:|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in phases.items()),
        f"| **the command (HTML, JSON and CSV)** | **{result['command_seconds']:.2f}** |",
        "",
        f"HTML {sizes['html_bytes'] / 1e6:.1f} MB, JSON {sizes['json_bytes'] / 1e6:.1f} MB, "
        f"CSV {sizes['csv_bytes'] / 1e6:.1f} MB; peak RSS {result['peak_rss_mib']:,} MiB.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path("bench/results/report.json"))
    args = parser.parse_args(argv)
    result = measure(args.tickets, args.seed, argv)
    path = results.write(args.out.parent, args.out.stem, result, table)
    print(table(result))
    print(f"\n{path}")


if __name__ == "__main__":
    main()
