"""`sla-processor dlq`: list and show dead letters, and redrive them once the cause is fixed:
each record goes back to its origin topic once, however often the redrive is run, and the
worker applies it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .helpers import REPO_ROOT
from .worker_harness import Worker, at, consume, event, produce


def dlq(worker: Worker, *args: str) -> list[dict[str, Any]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **worker.env}
    done = subprocess.run([sys.executable, "-m", "processor", "dlq", *args], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_list_show_and_redrive_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.start()
    tickets = worker.settings.topic_tickets
    dead = f"{tickets}.dlq"
    base = datetime.now(UTC)
    opened = event("r-1", "ticket.opened", at(base, 0), "T-R",
                   {"customer_id": "c", "support_tier": "premium", "severity": "low"})  # fmt: skip
    responded = event("r-2", "ticket.responded", at(base, 1), "T-R", {"agent_id": "a"})
    try:
        # The upstream sent the response before the ticket: it is dead-lettered.
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"T-R", responded),
                                              (tickets, b"T-X", b"{not json")]))  # fmt: skip
        assert len(asyncio.run(consume(kafka_bootstrap, [dead], seconds=20, expect=2))) == 2
        *rows, total = dlq(worker, "list", "--topic", dead)
        assert total == {"dead_letters": 2, "reasons": {"malformed_json": 1, "unknown_ticket": 1}}
        unknown = next(r for r in rows if r["reason"] == "unknown_ticket")
        assert unknown["origin"].startswith(f"{tickets}/")
        assert "value" not in unknown  # list shows ids and sizes only
        [shown] = dlq(worker, "show", "--topic", dead, "--partition", str(unknown["partition"]),
                      "--offset", str(unknown["offset"]))  # fmt: skip
        assert orjson.loads(shown["value"]) == orjson.loads(responded)
        assert ["sla-error-reason", "unknown_ticket"] in shown["headers"]

        # The upstream is fixed: the ticket is opened. Then a dry run, a redrive, and another.
        asyncio.run(produce(kafka_bootstrap, [(tickets, b"T-R", opened)]))
        *planned, dry = dlq(worker, "redrive", "--topic", dead, "--reason", "unknown_ticket",
                            "--dry-run")  # fmt: skip
        first = dlq(worker, "redrive", "--topic", dead, "--reason", "unknown_ticket")
        again = dlq(worker, "redrive", "--topic", dead, "--reason", "unknown_ticket")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = worker.get("/tickets/T-R")
            if status == 200 and orjson.loads(body)["responded_at"] is not None:
                break
            time.sleep(0.3)
        view = orjson.loads(worker.get("/tickets/T-R")[1])
        inputs = asyncio.run(consume(kafka_bootstrap, [tickets], seconds=5, expect=4))
    finally:
        worker.stop()
    assert [p["origin"] for p in planned] == [unknown["origin"]]
    assert dry == {"dry_run": True, "sent": 1, "redriven_before": 0, "truncated": 0,
                   "without_origin": 0}  # fmt: skip
    assert first[-1]["sent"] == 1
    assert again[-1] == {"dry_run": False, "sent": 0, "redriven_before": 1, "truncated": 0,
                         "without_origin": 0}  # fmt: skip
    assert view["responded_at"] is not None
    redriven = [r for r in inputs if dict(r.headers).get("sla-redrive-of")]
    assert len(redriven) == 1
    assert dict(redriven[0].headers)["sla-redrive-of"] == unknown["origin"].encode()
    assert (redriven[0].key, redriven[0].value) == (b"T-R", responded)
