"""The worker's web port: ticket and maintenance views of a known scenario, 404s, a /metrics scrape
that promtool accepts with bounded labels only, bound to 127.0.0.1 whatever Faust's own
environment variables say."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from processor.spawn import free_port
from schemas.outputs import rfc3339

from .worker_harness import Worker, at, consume, event, produce

METRIC_NAMES = (
    "sla_events_processed_total",
    "sla_events_rejected_total",
    "sla_escalations_total",
    "sla_breaches_total",
    "sla_updates_due_total",
    "sla_open_tickets",
    "sla_pending_deadlines",
    "sla_timer_lateness_seconds_bucket",
    "sla_consumer_lag",
    "sla_kafka_connection_errors_total",
    "sla_kafka_unreachable_seconds",
    "sla_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "python_info",
)


OPENMETRICS = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"

# Faust's own views: the raw stored state of any table key, the topology, statistics.
FAUST_VIEWS = ("/", "/router/", "/router/unknown/", "/table/tickets/W-URGENT/", "/graph/",
               "/stats/", "/performance/")  # fmt: skip


def opened(base: datetime, subject: str, seconds: float, **data: Any) -> bytes:
    fields = {"customer_id": "CUST-" + subject, **data}
    return event(subject + "-1", "ticket.opened", at(base, seconds), subject, fields)


def scenario(base: datetime) -> list[tuple[str, bytes]]:
    t = "tickets"
    return [
        # breached at +1.25 s by a timer; next: step 2 at +10 s
        (t, opened(base, "W-URGENT", 0, support_tier="premium", severity="urgent")),
        # responded in time, then waiting on the customer: update clock paused
        (t, opened(base, "W-HIGH", 0, support_tier="basic", severity="high")),
        (t, event("W-HIGH-2", "ticket.responded", at(base, 1), "W-HIGH", {"agent_id": "a"})),
        (
            t,
            event(
                "W-HIGH-3",
                "ticket.status_changed",
                at(base, 2),
                "W-HIGH",
                {"status": "pending_customer"},
            ),
        ),
        # normal by classification: no ladder, a 20 s response target
        (t, opened(base, "W-NORMAL", 0, support_tier="premium", impact="minor")),
        # an hour ago in demo time: its update window passed, so an update_due fires at once
        (t, opened(base, "W-OLD", -12, support_tier="select", severity="urgent")),
        (t, event("W-OLD-2", "ticket.responded", at(base, -11.5), "W-OLD")),
        (t, b"not json"),  # one rejection, for the counter
        (
            "maintenance",
            event(
                "M-WEB-1",
                "maintenance.scheduled",
                at(base, 0),
                "M-WEB",
                {
                    "kind": "planned",
                    "summary": "switch",
                    "window_start": at(base, 300),
                    "window_end": at(base, 310),
                },
            ),
        ),
    ]


def test_views_metrics_and_binding(kafka_bootstrap: str, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (Debian package prometheus)"
    # Faust reads these un-prefixed variables too: they must not override the SLA_ settings.
    decoys = {"WEB_BIND": "0.0.0.0", "WEB_HOST": "0.0.0.0", "WEB_PORT": str(free_port())}
    worker = Worker(kafka_bootstrap, tmp_path / "worker", extra_env=decoys)
    assert "SLA_WEB_HOST" not in worker.env  # the default is what is tested
    worker.create_topics()
    worker.start()
    base = datetime.now(UTC)
    topics = {
        "tickets": worker.settings.topic_tickets,
        "maintenance": worker.settings.topic_maintenance,
    }
    try:
        rows = scenario(base)
        # One upstream key for all: one partition, so per-subject order holds; most re-keyed.
        asyncio.run(produce(kafka_bootstrap, [(topics[k], b"tenant", v) for k, v in rows]))
        # step 1 x3, W-OLD step 2, the two breaches, W-OLD's update due, notice, violation
        asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=10, expect=9))
        time.sleep(max((base + timedelta(seconds=3) - datetime.now(UTC)).total_seconds(), 0))
        views = {s: worker.get(f"/tickets/{s}") for s in ("W-URGENT", "W-HIGH", "W-NORMAL")}
        maintenance = worker.get("/maintenance/M-WEB")
        missing = [worker.get("/tickets/NOPE"), worker.get("/maintenance/NOPE")]
        status, scrape = worker.get("/metrics")
        faust_views = {path: worker.get(path)[0] for path in FAUST_VIEWS}
        asked = urllib.request.Request(worker.web + "/metrics", headers={"Accept": OPENMETRICS})
        with urllib.request.urlopen(asked, timeout=10) as response:
            openmetrics = (response.headers["Content-Type"], response.read())
        listening = _listening(int(worker.env["SLA_WEB_PORT"]), int(decoys["WEB_PORT"]))
    finally:
        worker.stop()

    def instant(seconds: float) -> str:
        return rfc3339(base + timedelta(seconds=seconds))

    assert {s: code for s, (code, _) in views.items()} == dict.fromkeys(views, 200)
    urgent, high, normal = (orjson.loads(body) for _, body in views.values())
    assert _pick(urgent) == {
        "severity": "urgent", "support_tier": "premium", "phase": "open",
        "clock_start": instant(0), "initial_response": None, "next_escalation": instant(10),
        "next_escalation_step": 2, "paused": False,
        "breaches": [{"target": "initial_response", "due_at": instant(1.25)}],
    }  # fmt: skip
    assert _pick(high) == {
        "severity": "high", "support_tier": "basic", "phase": "open",
        "clock_start": instant(0), "initial_response": None, "next_escalation": instant(10),
        "next_escalation_step": 2, "paused": True, "breaches": [],
    }  # fmt: skip
    assert (high["responded_at"], high["deadlines"]["update_due"]) == (instant(1), None)
    assert _pick(normal) == {
        "severity": "normal", "support_tier": "premium", "phase": "open",
        "clock_start": instant(0), "initial_response": instant(20), "next_escalation": None,
        "next_escalation_step": None, "paused": False, "breaches": [],
    }  # fmt: skip
    assert {urgent["policy"], high["policy"], normal["policy"]} == {"default@1"}
    code, body = maintenance
    assert code == 200
    assert orjson.loads(body) == {
        "maintenance_id": "M-WEB", "kind": "planned", "policy": "default@1", "revision": 1,
        "window_start": instant(300), "window_end": instant(310), "cancelled": False,
        "next_reminder": instant(180), "next_reminder_offset": "PT2M",
    }  # fmt: skip
    assert [code for code, _ in missing] == [404, 404]
    assert faust_views == dict.fromkeys(FAUST_VIEWS, 404)

    assert status == 200
    content_type, negotiated = openmetrics
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert negotiated.endswith(b"# EOF\n")
    assert b"sla_events_processed_total{" in negotiated
    text = scrape.decode()
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=scrape, capture_output=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    for name in METRIC_NAMES:
        assert any(line.startswith(name) for line in samples), f"no {name} sample"
    ids = [s for _, v in rows for s in _ids(v)]
    assert ids
    assert [line for line in samples if any(i in line for i in ids)] == []

    assert listening == {int(worker.env["SLA_WEB_PORT"]): {"127.0.0.1"}}


def _pick(view: dict[str, Any]) -> dict[str, Any]:
    deadlines = view["deadlines"]
    return {
        **{k: view[k] for k in ("severity", "support_tier", "phase", "clock_start")},
        "initial_response": deadlines["initial_response"],
        "next_escalation": deadlines["next_escalation"],
        **{k: view[k] for k in ("next_escalation_step", "paused", "breaches")},
    }


def _ids(value: bytes) -> list[str]:
    """The subject and customer id of an input event (none for bytes that are not JSON)."""
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    data = parsed.get("data") or {}
    return [parsed["subject"], *([data["customer_id"]] if "customer_id" in data else [])]


def _listening(*ports: int) -> dict[int, set[str]]:
    """Local addresses in LISTEN state on these ports, from /proc/net/tcp and tcp6."""
    found: dict[int, set[str]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and int(port, 16) in ports:
                found.setdefault(int(port, 16), set()).add(_address(address))
    return found


def _address(hexed: str) -> str:
    if len(hexed) == 8:  # IPv4, little-endian
        return ".".join(str(b) for b in reversed(bytes.fromhex(hexed)))
    return "ipv6:" + hexed
