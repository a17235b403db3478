"""`sla-processor demo`: a scripted minute of tickets through a real worker, printed as it fires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processor.settings import Settings
from processor.spawn import WorkerProcess, isolated_env
from processor.topics import create_topics
from processor.topology import client_options

# (seconds after start, type, subject, data): one hour of the seed's SLA is five seconds here.
SCRIPT: tuple[tuple[float, str, str, dict[str, Any]], ...] = (
    (0, "ticket.opened", "DEMO-URGENT", {"customer_id": "acme", "support_tier": "premium", "severity": "urgent"}),
    (1, "ticket.opened", "DEMO-HIGH", {"customer_id": "globex", "support_tier": "select", "severity": "high"}),
    (2, "ticket.opened", "DEMO-CLASSIFIED", {"customer_id": "initech", "support_tier": "basic",
                                             "impact": "service_down", "problem_type": "api"}),
    (3, "ticket.responded", "DEMO-HIGH", {"agent_id": "a-7"}),
    (4, "ticket.responded", "DEMO-URGENT", {"agent_id": "a-1"}),
    (2.5, "ticket.responded", "DEMO-CLASSIFIED", {}),
    (5, "maintenance.scheduled", "DEMO-MAINT", {"kind": "planned", "summary": "core router firmware",
                                               "window_start": 155, "window_end": 185}),
    (12, "ticket.severity_changed", "DEMO-HIGH", {"severity": "urgent"}),
    (16, "ticket.updated", "DEMO-URGENT", {"agent_id": "a-1"}),
    (18, "ticket.resolved", "DEMO-CLASSIFIED", {}),
    (30, "ticket.resolved", "DEMO-URGENT", {}),
    (32, "ticket.closed", "DEMO-HIGH", {}),
)  # fmt: skip


def demo_settings(base: Settings, run: str) -> dict[str, str]:
    """Environment for a worker isolated on its own topics, with the seconds-scaled policy."""
    policy = resources.files("processor.sla").joinpath("demo_policy.toml")
    env = isolated_env(f"demo-{run}.", f"sla-demo-{run}", base.kafka_bootstrap_servers,
                       f"var/demo-{run}", 2, str(policy))  # fmt: skip
    return {**env, "SLA_KAFKA_SECURITY_PROTOCOL": base.kafka_security_protocol}


def _events(start: datetime) -> Iterator[tuple[str, bytes, bytes]]:
    for n, (offset, kind, subject, data) in enumerate(sorted(SCRIPT, key=lambda row: row[0])):
        data = dict(data)
        for field in ("window_start", "window_end"):
            if field in data:
                data[field] = (start + timedelta(seconds=data[field])).isoformat()
        event = {"specversion": "1.0", "id": f"demo-{n}", "source": "demo", "type": kind,
                 "time": (start + timedelta(seconds=offset)).isoformat(), "subject": subject, "data": data}  # fmt: skip
        topic = "maintenance" if kind.startswith("maintenance.") else "tickets"
        yield topic, subject.encode(), orjson.dumps(event)


def _describe(value: bytes, start: datetime) -> str:
    event = orjson.loads(value)
    data, kind = event["data"], event["type"]
    due = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    at = f"+{(due - start).total_seconds():5.1f}s"
    detail = {
        "sla.escalation": lambda: (
            f"step {data['step']} ({data['severity']}): "
            + ", ".join(f"{a['action']} {a['role']}" for a in data["actions"])
        ),
        "sla.breach": lambda: (
            f"{data['target']} missed ({data['severity']}, {data['support_tier']})"
        ),
        "sla.update_due": lambda: f"update #{data['cycle']} due (every {data['frequency']})",
    }.get(kind, lambda: f"{data.get('kind', '')} lead time {data.get('lead_time', '')}")()
    return f"{at}  {kind:32} {event['subject']:16} {detail}"


async def _play(env: dict[str, str], seconds: float) -> int:
    options = client_options(Settings(_env_file=None, **_settings_kwargs(env)))
    producer = AIOKafkaProducer(**options)
    outputs = [
        env[k]
        for k in (
            "SLA_TOPIC_ESCALATIONS",
            "SLA_TOPIC_UPDATES_DUE",
            "SLA_TOPIC_BREACHES",
            "SLA_TOPIC_NOTICES",
        )
    ]
    dlq = env["SLA_TOPIC_TICKETS"] + ".dlq"
    consumer = AIOKafkaConsumer(*outputs, dlq, auto_offset_reset="earliest", **options)
    await producer.start()
    await consumer.start()
    try:
        start = datetime.now(UTC) + timedelta(seconds=1)
        print(f"demo: {len(SCRIPT)} events published as they happen; clock starts {start:%H:%M:%S}")
        publishing = asyncio.create_task(_publish(producer, env, start))
        seen = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    seen += 1
                    print(_line(record, env, dlq, start), flush=True)
        await publishing
        print(f"demo: {seen} outputs in {seconds:.0f} s")
        return 0 if seen else 1
    finally:
        await consumer.stop()
        await producer.stop()


async def _publish(producer: AIOKafkaProducer, env: dict[str, str], start: datetime) -> None:
    for topic, key, value in _events(start):
        at = orjson.loads(value)["time"]
        delay = (datetime.fromisoformat(at) - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(delay, 0.0))
        await producer.send_and_wait(
            env["SLA_TOPIC_TICKETS" if topic == "tickets" else "SLA_TOPIC_MAINTENANCE"],
            value,
            key=key,
        )
        if topic == "tickets" and key == b"DEMO-HIGH" and b"severity_changed" in value:
            await producer.send_and_wait(
                env["SLA_TOPIC_TICKETS"], b"{ this is not json", key=b"garbage"
            )


def _line(record: Any, env: dict[str, str], dlq: str, start: datetime) -> str:
    if record.topic == dlq:
        reason = dict(record.headers).get("sla-error-reason", b"?").decode()
        return f"          dead letter ({reason}): a malformed record on {env['SLA_TOPIC_TICKETS']}"
    return _describe(record.value, start)


def _settings_kwargs(env: dict[str, str]) -> dict[str, Any]:
    return {k.removeprefix("SLA_").lower(): v for k, v in env.items()}


def run(seconds: float = 40.0) -> int:
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    env = demo_settings(Settings(), run_id)
    asyncio.run(create_topics(Settings(_env_file=None, **_settings_kwargs(env))))
    log_path = Path(env["SLA_DATA_DIR"]) / "worker.log"
    worker = WorkerProcess(env, log_path)
    worker.start()
    try:
        worker.wait_ready(timeout=60.0)
        return asyncio.run(_play(env, seconds))
    finally:
        worker.stop(timeout=20)
        print(f"demo: worker stopped; its log is {log_path}")
