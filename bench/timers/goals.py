"""The goals the timer benchmark is judged by, and each figure's verdict."""

from __future__ import annotations

from typing import Any

GOALS = {
    "precision_p99_ms": 100.0,
    "precision_max_ms": 1000.0,
    "precision_early": 0,
    "burst_drain_s": 2.0,
    "recovery_s": 30.0,
}


def verdict(value: Any, goal: float, lower: bool = True) -> str:
    if value is None:
        return "not measured"
    return "met" if (value <= goal if lower else value >= goal) else "MISSED"


def runs_label(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def goal_row(figure: str, value: Any, goal: float) -> dict[str, Any]:
    return {
        "figure": figure,
        "value": value,
        "goal": f"<= {goal:.0f}",
        "verdict": verdict(value, goal),
    }


def precision_goals(label: str, sec: dict[str, Any]) -> list[dict[str, Any]]:
    m, n = sec["median"], sec["ok_runs"]
    label = f"{label} ({runs_label(n)})"
    early = sum(x.get("early", 0) for x in sec["runs"] if "error" not in x) if n else None
    return [
        goal_row(f"{label}: p99 lateness (ms)", m["lateness_ms.p99"], GOALS["precision_p99_ms"]),
        goal_row(f"{label}: max lateness (ms)", m["lateness_ms.max"], GOALS["precision_max_ms"]),
        {
            "figure": f"{label}: early fires (all runs)",
            "value": early,
            "goal": "0",
            "verdict": verdict(early, 0),
        },
    ]


def sparse_label(sec: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """A sparse section's first good run (its sizes) and its deadlines per second."""
    x0 = next((x for x in sec["runs"] if "error" not in x), sec["runs"][0])
    return x0, x0["due"] / x0["window_s"]


def goals_table(r: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for size, sec in r.get("precision", {}).items():
        rows += precision_goals(f"precision, {int(size):,} tickets", sec)
    for size, sec in r.get("precision_warnings", {}).items():
        rows += precision_goals(f"warnings, {int(size):,} tickets", sec)
    if r.get("precision_sparse"):
        x0, rate = sparse_label(r["precision_sparse"])
        label = f"precision, {x0['tickets']:,} tickets, {rate:,.0f} deadlines/s"
        rows += precision_goals(label, r["precision_sparse"])
    if "burst" in r:
        figure = (
            f"burst, {r['params']['burst']:,} deadlines due in the same second: T0 to last "
            f"output (s) ({runs_label(r['burst']['ok_runs'])})"
        )
        value = r["burst"]["median"]["t0_to_last_output_s"]
        rows.append(goal_row(figure, value, GOALS["burst_drain_s"]))
    for v in r.get("recovery", {}).get("variants", []):
        if "error" in v:
            continue
        label = f"recovery {v['store']} {v['signal']}"
        last = f"restart to last of {r['recovery']['overdue']:,} overdue outputs (s)"
        for key, name in (
            ("spawn_to_first_event_s", "restart to first processed event (s)"),
            ("spawn_to_last_overdue_s", last),
        ):
            rows.append(goal_row(f"{label}: {name}", v.get(key), GOALS["recovery_s"]))
    return rows
