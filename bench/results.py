"""What every benchmark writes: a head (date, machine, versions, commit, load), its figures as
JSON and a Markdown report beside it, and the formatting and statistics the reports share.

Figures of earlier commits stay in the result files they were written to; no code path here
knows about them.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import machine

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "faust-streaming",
    "aiokafka",
    "mode-streaming",
    "orjson",
    "rocksdict",
    "uvloop",
    "py-spy",
)


def git_state() -> dict[str, Any]:
    """HEAD and the product's files that differ from it (read-only git commands)."""

    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return found.stdout.rstrip()

    status = git("status", "--porcelain", "--", "processor", "schemas", "pyproject.toml")
    return {
        "head": git("rev-parse", "HEAD").strip(),
        "modified": [line[3:] for line in status.splitlines() if line.strip()],
    }


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def head(benchmark: str, command: str, argv: Sequence[str] | None, **more: Any) -> dict[str, Any]:
    """The first keys of a result: what ran, when, where, on which commit, under which load."""
    args = list(argv) if argv is not None else sys.argv[1:]
    result: dict[str, Any] = {
        "benchmark": benchmark,
        "command": " ".join([command, *args]),
        "date": machine.now_iso(),
        **machine.describe(),
        "versions": versions(),
        "git": git_state(),
        **more,
        "load": {"at_start": machine.loadavg()},
        "notes": [],
    }
    if result["git"]["modified"]:
        result["notes"].append(
            "measured on a work tree with uncommitted changes to: "
            + ", ".join(result["git"]["modified"])
        )
    return result


def wait_quiet(result: dict[str, Any], threshold: float) -> None:
    """Before the first run, wait (30 s polls, up to 10 min) for the 1-minute load to be at most
    `threshold` (negative: do not wait); the wait and the load then go into `result`."""
    if threshold >= 0:
        result["load"]["quiet_wait"] = machine.wait_quiet(threshold, 30, 600)
        result["load"]["at_start"] = machine.loadavg()


def write(
    out: Path, stem: str, result: dict[str, Any], markdown: Callable[[dict[str, Any]], str] | None
) -> Path:
    """`<out>/<stem>.json`, and `<out>/<stem>.md` from `markdown`; the JSON's path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if markdown is not None:
        (out / f"{stem}.md").write_text(markdown(result).rstrip("\n") + "\n")
    return path


# -- shared by the reports ----------------------------------------------------------------------


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


PCTS = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p99_9": 0.999, "max": 1.0}


def percentiles(
    values: Sequence[float], names: Sequence[str] = tuple(PCTS), digits: int = 1
) -> dict[str, Any]:
    """Nearest-rank percentiles, rounded to `digits`; None each if there are no values."""
    if not values:
        return dict.fromkeys(names)
    ordered = sorted(values)
    n = len(ordered)
    return {
        name: round(ordered[max(0, min(n - 1, math.ceil(PCTS[name] * n) - 1))], digits)
        for name in names
    }


def median_field(runs: Sequence[dict[str, Any]], path: str) -> Any:
    """The median over runs of a dotted field (`lateness_ms.p99`); None if no run has it."""
    values = []
    for r in runs:
        v: Any = r
        for part in path.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if isinstance(v, int | float):
            values.append(v)
    if not values:
        return None
    m = statistics.median(values)
    return round(m, 3) if isinstance(m, float) else m


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None
