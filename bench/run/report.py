"""The runs' medians, and processor.md: one function per section of the report."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.results import fmt, ratio
from bench.run.candidates import Candidate
from bench.run.figures import Run
from bench.workers import PARTITIONS

SUMMARY_FIELDS = ("events_per_s", "processing_events_per_s", "events_per_cpu_s", "startup_s",
                  "committed_s", "processing_s", "peak_rss_mib", "foreign_cores", "broker_cores",
                  "outputs", "dead_letters", "rekeyed")  # fmt: skip


def median_of(runs: list[Run], name: str) -> float | None:
    values = [getattr(r, name) for r in runs if r.ok and getattr(r, name) is not None]
    return round(statistics.median(values), 2) if values else None


def summarize(cands: list[Candidate], runs: dict[str, list[Run]]) -> dict[str, Any]:
    out = {}
    for cand in cands:
        rs = runs.get(cand.key, [])
        out[cand.key] = {
            "label": cand.label,
            "store": cand.store if cand.kind not in ("aiokafka",) and cand.table else None,
            "knobs": cand.knobs,
            "median": {f: median_of(rs, f) for f in SUMMARY_FIELDS},
            "runs": [asdict(r) for r in rs],
            "ok_runs": sum(r.ok for r in rs),
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    return "\n".join(line for section in SECTIONS for line in section(result))


def heading(r: dict[str, Any]) -> list[str]:
    return [
        f"# Processor end to end{' (QUICK smoke run: not figures)' if r['quick'] else ''}",
        "",
        f"{r['date']} · {r['machine']} · nproc {r['nproc']} · Python {r['python']} · "
        f"Kafka {r['kafka_version']} (single node, loopback) · faust-streaming {r['versions'].get('faust-streaming')}"
        f" · aiokafka {r['versions'].get('aiokafka')} · {r['events']:,} events over {PARTITIONS} partitions"
        f" · median of {r['repeat']} run(s) · command `{r['command'].strip()}`",
        "",
        f"Load: before start {r['load']['at_start']} (1/5/15-min); quiet wait: "
        f"{r['load']['quiet_wait']['waited_s'] if r['load'].get('quiet_wait') else 'not requested'} s"
        f"{'' if not r['load'].get('quiet_wait') or r['load']['quiet_wait']['quiet'] else ' (never got quiet)'}; "
        f"at end {r['load']['at_end']}. `foreign` = CPU cores used by other processes during the "
        "timed window (machine busy minus candidate, broker and runner).",
        "",
        load_summary(r),
        "",
        "**Clock.** " + r["clock"],
        "",
    ]


def throughput(r: dict[str, Any]) -> list[str]:
    if "throughput" not in r:
        return []
    lines = ["## 1. Throughput", "", *throughput_table(r["throughput"]), ""]
    ratios = r.get("ratios", {})
    return lines + [f"- {name}: **{fmt(value, 2)}**" for name, value in ratios.items()] + [""]


def knobs(r: dict[str, Any]) -> list[str]:
    if "knobs" not in r:
        return []
    return [
        "## 1b. Faust knobs on the processor (memory store, bench/candidates/processor_tuned.py)",
        "",
        *throughput_table(r["knobs"], control="tuned-none"),
        "",
        *(f"- {n}" for n in r.get("knob_notes", [])),
        "",
    ]


def supplementary(r: dict[str, Any]) -> list[str]:
    if "supplementary" not in r:
        return []
    return [
        "## 1c. producer_linger on both sides (run "
        f"{r.get('supplementary_meta', {}).get('date', '?')})",
        "",
        *throughput_table(r["supplementary"], control="faust-table"),
        "",
        *(
            f"- {name}: **{fmt(v[0], 2)}** committed, **{fmt(v[1], 2)}** processing"
            for name, v in r.get("supplementary_ratios", {}).items()
        ),
        "",
    ]


def memory(r: dict[str, Any]) -> list[str]:
    if "memory" not in r:
        return []
    lines = ["## 2. Memory per open ticket", "",
             "| store | tickets | RSS 0 / N/2 / N (MiB) | bytes per ticket (N vs 0) | marginal (N vs N/2) | sla_open_tickets | data dir |",
             "|---|---:|---|---:|---:|---:|---:|"]  # fmt: skip
    for m in r["memory"]:
        if "error" in m:
            lines.append(f"| {m['store']} | {m['tickets']:,} | error: {m['error'][:120]} | | | | |")
            continue
        rss = " / ".join(str(v) for v in m["rss_mib"].values())
        lines.append(
            f"| {m['store']}{' (one run)' if 'note' in m else ''} | {m['tickets']:,} | {rss} | **{fmt(m['bytes_per_ticket'])}**"
            f" | {fmt(m['marginal_bytes_per_ticket'])} | {fmt(m['open_tickets_metric'])}"
            f" | {m['data_dir_mib']} MiB |"
        )
    return [
        *lines,
        "",
        "Each figure is the median over the runs listed in processor.json; goal ≤ 1,024 bytes.",
        "",
    ]


def memory_traced(r: dict[str, Any]) -> list[str]:
    if "memory_traced" not in r:
        return []
    t = r["memory_traced"]
    if "error" in t:
        return [f"tracemalloc run failed: {t['error'][:300]}", ""]
    return [
        f"Under tracemalloc (one run, memory store, {t['tickets']:,} tickets): live Python "
        f"heap **{fmt(t['traced_bytes_per_ticket'])} bytes per ticket** "
        f"({t['traced_blocks_per_ticket']} blocks) against "
        f"{fmt(t['marginal_bytes_per_ticket'])} bytes of RSS (N vs N/2) in the same run. "
        "Biggest growth by allocation site (bytes per ticket, blocks at N):",
        "",
        "| site | bytes/ticket | blocks |",
        "|---|---:|---:|",
        *(f"| `{site}` | {b} | {n:,} |" for site, b, n in t["traced_top_growth"]),
        "",
    ]


def profile(r: dict[str, Any]) -> list[str]:
    if "profile" not in r:
        return []
    p = r["profile"]
    lines = ["## 3. Profile (py-spy, processor, memory store, one throughput run)", "",
             f"{p.get('samples', 0):,} samples at {p.get('rate')} Hz (blocking sampling), idle "
             f"frames excluded; processing ran at "
             f"{fmt((p.get('run') or {}).get('processing_events_per_s'))} events/s under the "
             "profiler; "
             f"flame graph: `{p.get('svg')}`.", ""]  # fmt: skip
    if "own_pct_by_package" not in p:
        return lines
    tables = (
        ("| samples by outermost frame (thread) | % |", "| `{}` | {} |", p.get("by_root_frame", []), 5),
        ("| own time by package | % |", "| {} | {} |", p["own_pct_by_package"], 15),
        ("| own time by function | % |", "| `{}` | {} |", p["own_pct"], 20),
        ("| inclusive time by function | % |", "| `{}` | {} |", p["inclusive_pct"], 25),
    )  # fmt: skip
    for title, row, shares, top in tables:
        lines += [title, "|---|---:|", *(row.format(n, v) for n, v in shares[:top]), ""]
    return lines


def notes(r: dict[str, Any]) -> list[str]:
    found = list(r.get("notes", []))
    for m in r.get("merges", []):
        found.append(
            f"sections {', '.join(m['sections'])} replaced by `{m['command']}` at {m['date']} "
            f"({m['events']:,} events, median of {m['repeat']}; load at its start "
            f"{m['load']['at_start']}, at its end {m['load'].get('at_end')})"
        )
    if not found:
        return []
    return ["## Notes", "", *(f"- {n}" for n in found), ""]


SECTIONS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    heading, throughput, knobs, supplementary, memory, memory_traced, profile, notes,
)  # fmt: skip


def load_summary(r: dict[str, Any]) -> str:
    before = [x["loadavg"][0] for x in r["load"].get("log", [])]
    foreign = [
        run["foreign_cores"]
        for section in ("throughput", "knobs", "supplementary")
        for row in r.get(section, {}).values()
        for run in row["runs"]
        if run.get("foreign_cores") is not None
    ]
    if not before:
        return ""
    text = (
        f"1-min load just before each run (our own previous run included): min "
        f"{min(before):.2f}, median {statistics.median(before):.2f}, max {max(before):.2f}."
    )
    if foreign:
        text += (
            f" Other processes' CPU during the timed windows: median "
            f"{statistics.median(foreign):.2f} cores, max {max(foreign):.2f} (of {r['nproc']})."
        )
    return text


def throughput_table(section: dict[str, Any], control: str | None = None) -> list[str]:
    head = ("| candidate | events/s (committed) | events/s (processing) | events per CPU-s | "
            "startup s | peak RSS MiB | foreign cores | outputs | runs (events/s) |")  # fmt: skip
    if control:
        head = head.replace("| runs", "| vs control (committed) | vs control (processing) | runs")
    lines = [head, "|---|" + "---:|" * (head.count("|") - 2)]
    control_row = section.get(control or "", {}).get("median", {})
    base = control_row.get("events_per_s")
    base_processing = control_row.get("processing_events_per_s")
    for row in section.values():
        m = row["median"]
        runs = ", ".join(fmt(x["events_per_s"]) if x["ok"] else "failed" for x in row["runs"])
        cells = [row["label"], f"**{fmt(m['events_per_s'])}**", fmt(m["processing_events_per_s"]),
                 fmt(m["events_per_cpu_s"]), fmt(m["startup_s"], 1), fmt(m["peak_rss_mib"]),
                 fmt(m["foreign_cores"], 2), fmt(m["outputs"])]  # fmt: skip
        if control:
            cells.append(fmt(ratio(m["events_per_s"], base), 2))
            cells.append(fmt(ratio(m["processing_events_per_s"], base_processing), 2))
        cells.append(runs)
        lines.append("| " + " | ".join(cells) + " |")
    return lines
