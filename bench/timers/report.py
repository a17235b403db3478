"""timers.md from timers.json: the goals and their verdicts, then one part per section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.results import fmt
from bench.timers.goals import sparse_label
from bench.workers import PARTITIONS

# -- the report ---------------------------------------------------------------------------------


def markdown(r: dict[str, Any]) -> str:
    lines = head(r)
    if "precision" in r:
        lines += precision_part(r)
    if "precision_warnings" in r:
        lines += warnings_part(r)
    if "precision_sparse" in r:
        lines += sparse_part(r)
    if "burst" in r:
        lines += burst_part(r)
    if "burst_instant" in r:
        lines += instant_part(r["burst_instant"])
    if "recovery" in r:
        lines += recovery_part(r)
    lines += ["## Loading", "", *(f"- {n}" for n in r.get("loading", [])), ""]
    if r.get("notes"):
        lines += ["## Notes", "", *(f"- {n}" for n in r["notes"]), ""]
    return "\n".join(lines)


def head(r: dict[str, Any]) -> list[str]:
    p, v = r["params"], r["versions"]
    lines = [
        f"# Timers{' (QUICK smoke run: not figures)' if r['quick'] else ''}",
        "",
        f"{r['date']} · {r['machine']} · nproc {r['nproc']} · {r['memory_gib']} GiB · Python "
        f"{r['python']} · Kafka {r['kafka_version']} (single node, loopback) · faust-streaming "
        f"{v.get('faust-streaming')} · aiokafka {v.get('aiokafka')} · rocksdict "
        f"{v.get('rocksdict')} · store {p['store']} · {PARTITIONS} partitions · TICK_BATCH "
        f"{p.get('tick_batch', 0):,}",
        "",
        *invocations(r),
        "",
        "Per-run CPU of other processes: `foreign` columns below. The commit each section ran "
        "on: "
        + "; ".join(f"{k} {short(heads)}" for k, heads in r.get("section_git", {}).items())
        + ".",
        "",
        "**Clock.** " + r["clock"],
        "",
        "## Goals",
        "",
        "| figure | value | goal | verdict |",
        "|---|---:|---:|---|",
    ]
    for row in r.get("goals", []):
        value = row["value"]
        digits = 3 if isinstance(value, float) and value < 100 else 0
        lines.append(
            f"| {row['figure']} | **{fmt(value, digits)}** | {row['goal']} | {row['verdict']} |"
        )
    return [*lines, ""]


def short(heads: Any) -> str:
    if not heads:
        return "?"
    a, b = (str(h or "?")[:7] for h in heads)
    return a if a == b else f"{a}..{b}"


def invocations(r: dict[str, Any]) -> list[str]:
    """One line per command that wrote into these results, with its load."""
    out = []
    for x in [r, *r.get("merges", [])]:
        log = x.get("load", {}).get("log", [])
        before = ", ".join(str(e["loadavg"][0]) for e in log)
        out.append(
            f"- `{x['command']}` at {x['date']} ({x.get('elapsed_min', '?')} min; git "
            f"{str(x.get('git', {}).get('head', '?'))[:7]} at its start): 1-min load at start "
            f"{x['load']['at_start'][0]}, at end {(x['load'].get('at_end') or ['?'])[0]}, just "
            f"before each run {before or '-'}"
        )
    return out


def precision_table(sections: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| tickets | runs | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | early | dup | "
        "missing | worker cores | foreign cores | ingest/s | input caught up s | worker "
        "histogram mean ms | RSS MiB |",
        "|---:|---:|" + "---:|" * 14,
    ]
    for label, sec in sections.items():
        m = sec["median"]
        lines.append(
            f"| {label} | {sec['ok_runs']} | {fmt(m['lateness_ms.p50'], 1)} | "
            f"{fmt(m['lateness_ms.p90'], 1)} | **{fmt(m['lateness_ms.p99'], 1)}** | "
            f"{fmt(m['lateness_ms.p99_9'], 1)} | **{fmt(m['lateness_ms.max'], 1)}** | "
            f"{fmt(m['early'])} | {fmt(m['duplicates'])} | {fmt(m['missing'])} | "
            f"{fmt(m['usage.worker_cores'], 2)} | {fmt(m['usage.foreign_cores'], 2)} | "
            f"{fmt(m['ingest.events_per_s'])} | {fmt(m['input_caught_up_s'], 1)} | "
            f"{fmt(m['worker_histogram.mean_ms'], 1)} | {fmt(m['rss_mib_after'])} |"
        )
    return lines


def run_lines(label: str, runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for x in runs:
        if "error" in x:
            lines.append(f"- {label}: FAILED {x['error'][:300]}")
            continue
        lm = x["lateness_ms"]
        loads = [
            f"{l_.get('method')} {l_.get('tickets'):,} in {l_.get('seconds')} s"
            + (f" (+ restore: spawn to Ready {l_['restore_s']} s)" if "restore_s" in l_ else "")
            for l_ in x["load"]
        ]
        lines.append(
            f"- {label}: {lm['p50']} / {lm['p99']} / {lm['max']}; bands "
            f"{x['lateness_bands_ms']}; worker histogram {x['worker_histogram']}; tick hold "
            f"{x.get('worker_tick_hold', '-')}; ticks "
            f"{x['ticks']:,}; pending deadlines at T0 {fmt(x.get('pending_deadlines_at_t0'))}; "
            f"loaded: {'; '.join(loads)}"
            f"{'; sample via /tickets: ' + str(x['sample_check']) if 'sample_check' in x else ''}"
            f"{'; ' + '; '.join(x['notes']) if x.get('notes') else ''}"
        )
    return lines


def precision_part(r: dict[str, Any]) -> list[str]:
    p = r["params"]
    lines = [
        "## 1. Precision",
        "",
        f"Per run: a fresh worker holding N open tickets; D = min(N, {p['due']:,}) of them "
        f"fall due uniformly over {p['window_s']} s (~{p['due'] / p['window_s']:,.0f}/s); the "
        "other N - D are due 8 h later (they sit in the deadline index and the store). The D "
        "tickets are produced as ticket.opened events and processed by the worker before "
        "T0; the N - D by a direct changelog write restored at start-up (see Loading). From "
        f"T0 - {p['lead_s']} s until the last timer output, ordinary events (bench/workload.py "
        f"ticket mix, deadlines a day ahead) are ingested at {p['rate']:,}/s. Median over runs "
        "of each figure. `input caught up s`: from the ingest's stop until the group's "
        "committed offsets reached the input's end (the commit interval, 2.8 s, is the floor: "
        "about that much means the worker kept up).",
        "",
        *precision_table({f"{int(k):,}": v for k, v in r["precision"].items()}),
        "",
        "Runs (p50 / p99 / max ms; lateness bands in ms → outputs):",
        "",
    ]
    for size, sec in r["precision"].items():
        lines += run_lines(f"{int(size):,}", sec["runs"])
    return [*lines, ""]


def warnings_part(r: dict[str, Any]) -> list[str]:
    sections = r["precision_warnings"]
    x0: dict[str, Any] = next(
        (x for sec in sections.values() for x in sec["runs"] if "measured" in x), {}
    )
    measured = x0.get("measured", {})
    lines = [
        "### 1b. Precision of warnings before a deadline",
        "",
        "As in 1, but the worker runs with the default policy plus a warning at 50 % of the "
        "low severity's initial-response target (`[warnings.low] percent = [50]`, policy file "
        f"`{measured.get('policy_file', '?')}`), each of the D tickets is opened "
        f"{fmt((measured.get('lead_s') or 0) / 3600, 1)} h before its due instant, and the "
        "measured outputs are its `sla.warning`, read back from the warnings topic (the breach "
        "falls due hours later, outside the window). The worker's histogram counts every "
        "timer output, warnings included.",
        "",
        *precision_table({f"{int(k):,}": v for k, v in sections.items()}),
        "",
        "Runs (p50 / p99 / max ms; lateness bands in ms → outputs):",
        "",
    ]
    for size, sec in sections.items():
        lines += run_lines(f"warnings {int(size):,}", sec["runs"])
    return [*lines, ""]


def sparse_part(r: dict[str, Any]) -> list[str]:
    sec = r["precision_sparse"]
    x0, rate = sparse_label(sec)
    label = f"{x0['tickets']:,} ({rate:,.0f}/s)"
    return [
        f"### 1c. Precision at a sparse rate ({rate:,.0f} deadlines/s)",
        "",
        f"As in 1, with {x0['tickets']:,} open tickets of which {x0['due']:,} fall due "
        f"uniformly over {x0['window_s']:.0f} s ({rate:,.1f}/s: 100k tickets with 8 h "
        "targets average about 3.5 deadlines/s), ordinary events at "
        f"{r['params']['rate']:,}/s. Median over runs.",
        "",
        *precision_table({label: sec}),
        "",
        *run_lines(label, sec["runs"]),
        "",
    ]


def burst_part(r: dict[str, Any]) -> list[str]:
    p, m = r["params"], r["burst"]["median"]
    lines = [
        "## 2. Burst",
        "",
        f"Per run: a fresh worker{_sharing(r)}; {p['burst']:,} low-severity tickets (processed as events "
        "beforehand) due within the same second [T0, T0 + 1 s), at whole milliseconds "
        f"({p['burst'] // 1000:,} per millisecond over {PARTITIONS} partitions; at one single "
        "instant they never fire: see 2b); a probe producer sends one urgent "
        "premium ticket.opened every 100 ms from T0 - 5 s (its escalation step 1 is emitted "
        "from the event itself) and the probe latency is escalation CreateTime minus send "
        "time, for probes sent between T0 and the last timer output.",
        "",
        "| runs | T0 → first output s | T0 → last output s | outputs/s | early | dup | "
        "missing | probe p50 ms | probe p99 ms | probe max ms | worker cores | foreign "
        "cores | ticks |",
        "|---:|" + "---:|" * 12,
        f"| {r['burst']['ok_runs']} | {fmt(m['t0_to_first_output_s'], 3)} | "
        f"**{fmt(m['t0_to_last_output_s'], 3)}** | {fmt(m['outputs_per_s'])} | "
        f"{fmt(m['early'])} | {fmt(m['duplicates'])} | {fmt(m['missing'])} | "
        f"{fmt(m['probes_during_drain.p50'], 1)} | {fmt(m['probes_during_drain.p99'], 1)} | "
        f"{fmt(m['probes_during_drain.max'], 1)} | {fmt(m['drain_usage.worker_cores'], 2)} | "
        f"{fmt(m['drain_usage.foreign_cores'], 2)} | {fmt(m['ticks_during_drain'])} |",
        "",
    ]
    for x in r["burst"]["runs"]:
        if "error" in x:
            lines.append(f"- FAILED {x['error'][:300]}")
            continue
        lines.append(
            f"- first {x.get('t0_to_first_output_s')} s, last {x.get('t0_to_last_output_s')} "
            f"s; outputs per second of the drain {x.get('outputs_per_second_of_drain')}; "
            f"worker cores per second {x.get('worker_cores_per_s')}; ticks per partition "
            f"{x.get('ticks_per_partition')}; tick CreateTimes - T0 (s) "
            f"{x.get('tick_offsets_s')}; probes before T0 {x.get('probes_before_t0')}"
        )
    if r["burst"].get("profile"):
        lines += profile_lines(r["burst"]["profile"])
    return [*lines, ""]


def profile_lines(prof: dict[str, Any]) -> list[str]:
    return [
        "",
        f"py-spy over one extra burst drain ({prof.get('samples', 0):,} samples"
        f" at 100 Hz, that run: T0 → last {prof.get('t0_to_last_output_s')} s; collapsed "
        f"stacks `{prof.get('collapsed')}`): own time by function",
        "",
        "| function | % |",
        "|---|---:|",
        *(f"| `{n}` | {v} |" for n, v in prof.get("own_pct", [])[:15]),
        "",
        "| inclusive time by function | % |",
        "|---|---:|",
        *(f"| `{n}` | {v} |" for n, v in prof.get("inclusive_pct", [])[:20]),
    ]


def _sharing(r: dict[str, Any]) -> str:
    workers = r["burst"]["runs"][0].get("workers", 1) if r["burst"]["runs"] else 1
    if workers <= 1:
        return ""
    return (
        f" and {workers - 1} more of its group sharing the partitions (worker cores: the "
        "first's; the others' are in foreign cores)"
    )


def instant_part(x: dict[str, Any]) -> list[str]:
    lines = [
        "### 2b. The same burst at one single instant",
        "",
        f"One run: {x['deadlines']:,} deadlines all due at the very same microsecond T0 "
        f"(about {x['deadlines'] // PARTITIONS:,} per partition; TICK_BATCH is "
        f"{x['tick_batch']:,}), followed for at most 60 s.",
        "",
    ]
    if "error" in x:
        lines.append(f"- FAILED {x['error'][:300]}")
    elif x.get("timed_out"):
        lines.append(
            f"- **{x['unique']:,} of {x['deadlines']:,} emitted after {x['followed_s']} s**; "
            f"pending deadlines then {fmt(x.get('pending_deadlines_at_timeout'))}; timer "
            f"outputs counted by the worker {fmt(x.get('timer_outputs_counted_by_worker'))}; "
            f"worker cores {x['drain_usage'].get('worker_cores')} (per second: "
            f"{x.get('worker_cores_per_s')}); ticks {x.get('ticks_during_drain')} "
            f"(per partition {x.get('ticks_per_partition')}); probe latency meanwhile "
            f"{x.get('probes_during_drain')}"
        )
    else:
        lines.append(
            f"- drained: first {x.get('t0_to_first_output_s')} s, last "
            f"{x.get('t0_to_last_output_s')} s, {fmt(x.get('outputs_per_s'))} outputs/s; "
            f"missing {x['missing']}; ticks per partition {x.get('ticks_per_partition')}"
        )
    return [*lines, ""]


def recovery_part(r: dict[str, Any]) -> list[str]:
    rec, p = r["recovery"], r["params"]
    load = rec.get("load", {})
    sample = load.get("sample_check") or {}
    lines = [
        "## 3. Recovery",
        "",
        f"One state of {rec['tickets']:,} open tickets (deadlines 8 h ahead), written to the "
        f"tickets changelog and restored by a first worker ({load.get('restore_store')}: "
        f"spawn to Ready {(load.get('restore') or {}).get('spawn_to_ready_s')} s; sample "
        f"through /tickets/{{id}}: {sample.get('ok')}/{sample.get('checked')} found open). Then, "
        f"per variant in turn: {rec['overdue']:,} more tickets are processed as events with "
        f"their breach due over {p['spread_s']} s starting after the worker is stopped (signal "
        f"below); once all are overdue (+{p['down_after_s']} s) a new worker is spawned on the "
        "same group and data dir with the store below. A probe (urgent ticket.opened every "
        "100 ms, from the stop on) shows the first processed event. The SIGKILL variant spawns "
        "at once: the dead member holds the partitions until its session times out "
        "(SLA_SESSION_TIMEOUT_SECONDS, 10 s), unless it ran as a static group member "
        "(SLA_GROUP_INSTANCE_ID; `static member` below): its successor takes its place "
        "under the same id at once. A `rebuild` counts every stored state; states stored "
        "with their next deadline (codec version 2) are not decoded.",
        "",
        "| store (previous) | signal | stop s | downtime s | spawn → Ready s | changelog "
        "replay s | rebuild s (deadlines) | spawn → first event s | spawn → first / "
        "last overdue s | overdue lateness p50 / max s | dup | missing | RSS after MiB | "
        "changelog records |",
        "|---|---|" + "---:|" * 12,
    ]
    lines += [variant_row(v) for v in rec.get("variants", [])]
    lines.append("")
    if "error" in rec:
        lines += [f"Recovery section FAILED: {rec['error'][:500]}", ""]
    return lines


def variant_row(v: dict[str, Any]) -> str:
    if "error" in v:
        return f"| {v['store']} | {v['signal']} | FAILED {v['error'][:200]} |" + " |" * 11
    lm = v["lateness_ms"]
    replay = fmt(v.get("changelog_replay_s"), 1) if v.get("changelog_replay_s") else "tail"
    return (
        f"| {v['store']} ({v['previous_store']}) | {v['signal']} | {v['stop_s']} | "
        f"{v['downtime_s']} | {v['spawn_to_ready_s']} | {replay} | "
        f"{fmt(v['rebuild_seconds'], 2)} ({fmt(v['rebuild_deadlines'])}) | "
        f"**{v['spawn_to_first_event_s']}** | {v.get('spawn_to_first_overdue_s')} / "
        f"**{v.get('spawn_to_last_overdue_s')}** | "
        f"{fmt((lm['p50'] or 0) / 1000, 1)} / {fmt((lm['max'] or 0) / 1000, 1)} | "
        f"{v['duplicates']} | {v['missing']} | {v['rss_mib_after_recovery']} | "
        f"{fmt(v['changelog_records_at_restart'])} |"
    )
