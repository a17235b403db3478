"""What the timer outputs read back say: lateness (CreateTime minus due instant), completeness,
repeats; and the worker's own lateness histogram over the same window."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from bench.kafka import Output
from bench.results import percentiles

LATENESS_BANDS_MS = (0, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
LATENESS = "sla_timer_lateness_seconds"
TICK_HOLD = "sla_tick_hold_seconds"  # from deciding a tick to firing or sending it


def _band_names() -> list[tuple[float, float, str]]:
    highs = (*LATENESS_BANDS_MS[1:], math.inf)
    return [
        (lo, hi, f"{lo}-{hi if hi != math.inf else ''}")
        for lo, hi in zip(LATENESS_BANDS_MS, highs, strict=True)
    ]


def bands(values: Sequence[float]) -> dict[str, int]:
    """How many values fall in each lateness band (ms), in band order; `<0` for early ones."""
    out: Counter[str] = Counter()
    named = _band_names()
    for v in values:
        out[next((name for lo, hi, name in named if lo <= v < hi), "<0")] += 1
    order = ["<0", *(name for _, _, name in named)]
    return {band: out[band] for band in order if band in out}


def timer_outputs(records: Sequence[Output]) -> dict[str, Any]:
    """Lateness (ms) of timer outputs, duplicates by id, and their (due, emitted) spans."""
    lateness, ids, dues, emitted = [], Counter[str](), [], []
    for _, _, ts, value in records:
        body = orjson.loads(value)
        due = datetime.fromisoformat(body["time"]).timestamp()
        lateness.append(ts - round(due * 1000))
        ids[body["id"]] += 1
        dues.append(due)
        emitted.append(ts / 1000)
    latest = sorted(range(len(lateness)), key=lambda i: -lateness[i])[:5]
    return {
        "outputs": len(records),
        "unique": len(ids),
        "duplicates": sum(c - 1 for c in ids.values()),
        "early": sum(1 for x in lateness if x < 0),
        "lateness_ms": percentiles(lateness),
        "lateness_bands_ms": bands(lateness),
        # The five latest outputs: [due - first due (s), lateness (ms)].
        "worst": [[round(dues[i] - min(dues), 3), lateness[i]] for i in latest],
        "first_emitted": min(emitted) if emitted else None,
        "last_emitted": max(emitted) if emitted else None,
    }


def histogram_delta(
    before: dict[str, Any], after: dict[str, Any], name: str = LATENESS
) -> dict[str, Any]:
    """One of the worker's histograms (by default its own sla_timer_lateness_seconds) over a
    window: count, mean, and the bucket bounds holding p50 / p99 / max."""
    a, b = before.get(f"{name}_bucket", {}), after.get(f"{name}_bucket", {})
    cum = sorted(((float(le), b.get(le, 0.0) - a.get(le, 0.0)) for le in b), key=lambda x: x[0])

    def delta(name: str) -> float:
        return float(after.get(name, 0.0) - before.get(name, 0.0))

    count, total = delta(f"{name}_count"), delta(f"{name}_sum")
    out: dict[str, Any] = {
        "count": int(count),
        "mean_ms": round(1000 * total / count, 1) if count else None,
    }
    for pct, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        bound = next((le for le, c in cum if count and c >= q * count - 1e-9), None)
        out[f"{pct}_le_ms"] = (
            None if bound is None else ("+Inf" if bound == math.inf else round(bound * 1000))
        )
    return out
