"""The real Prometheus (Debian's) with the project's rules, scraping a live worker: every rule
loads and evaluates without error, every metric an alert reads exists, and every query of the
Grafana dashboard returns data."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from processor.spawn import free_port, stop_process
from tests.ingest.flows import sample

from .helpers import REPO_ROOT
from .ingest_harness import Ingest
from .worker_harness import EXTENDED_SECONDS_POLICY, Worker, at, consume, event, produce

RULES = REPO_ROOT / "deploy" / "prometheus" / "rules" / "sla.rules.yml"
BUILDER = REPO_ROOT / "deploy" / "grafana" / "build_dashboard.py"
# Grafana's variables, as Grafana would fill them in for a short time range.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__range": "5m"}


def _dashboard_queries() -> list[str]:
    spec = importlib.util.spec_from_file_location("build_dashboard", BUILDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    board = json.loads(module.render())
    exprs: list[str] = module.queries(board)
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(variable, value) for e in exprs]
    return exprs


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def _query(base: str, expr: str) -> list[Any]:
    data = _api(base, "/api/v1/query", query=expr)
    result: list[Any] = data["result"]
    return result


def test_rules_and_dashboard_queries_against_a_live_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing (Debian package prometheus)"
    # Every optional rule on: the alert on missed acknowledgements reads a series that exists
    # only under a policy that awaits them.
    worker = Worker(kafka_bootstrap, tmp_path / "worker",
                    overrides={"SLA_POLICY_FILE": str(EXTENDED_SECONDS_POLICY)})  # fmt: skip
    worker.create_topics()
    worker.start()
    ingest = Ingest(worker)  # its alerts read its own metrics, scraped as job sla-ingest
    ingest.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "sla-processor",
                "static_configs": [{"targets": [f"127.0.0.1:{worker.env['SLA_WEB_PORT']}"]}],
            },
            {
                "job_name": "sla-ingest",
                "static_configs": [{"targets": [f"127.0.0.1:{ingest.port}"]}],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    prometheus = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    tickets = worker.settings.topic_tickets
    base_time = datetime.now(UTC)
    try:
        data = {"customer_id": "c", "support_tier": "premium", "severity": "urgent"}
        records = [(tickets, f"P-{n}".encode(),
                    event(f"P-{n}-1", "ticket.opened", at(base_time, 0), f"P-{n}", data))
                   for n in range(4)]  # fmt: skip
        records.append((tickets, b"P-bad", b"{not json"))
        asyncio.run(produce(kafka_bootstrap, records))
        assert ingest.post("zendesk", sample("zendesk/ticket_created.json"))[0] == 202
        assert ingest.post("zendesk", {"not": "a Zendesk event"})[0] == 422
        # step 1 at once, the breach at 1.25 s (demo policy), for each ticket
        asyncio.run(consume(kafka_bootstrap, worker.outputs, seconds=30, expect=8))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                scraped = _query(base, 'count_over_time(up{job="sla-processor"}[1m])')
            except OSError:  # not listening yet
                scraped = []
            if scraped and float(scraped[0]["value"][1]) >= 15:
                break
            time.sleep(1)
        dashboard = {expr: _query(base, expr) for expr in _dashboard_queries()}
        groups = _api(base, "/api/v1/rules")["groups"]
        alerts = [r for g in groups for r in g["rules"] if r["type"] == "alerting"]
        evaluated = {r["name"]: _query(base, r["query"]) for r in alerts}
        names = {m for r in alerts for m in re.findall(r"\b(?:sla_[a-z_]+|up)\b", r["query"])}
        present = {m: _query(base, f'count({{__name__="{m}"}})') for m in names}
    finally:
        stop_process(prometheus, timeout=30)
        log.close()
        ingest.stop()
        worker.stop()
    assert dashboard, "no query in the dashboard"
    empty = [expr for expr, result in dashboard.items() if not result]
    assert empty == [], f"dashboard queries without data: {empty}"
    assert len(alerts) == len(yaml.safe_load(RULES.read_text())["groups"][0]["rules"])
    assert {r["name"]: r["health"] for r in alerts} == dict.fromkeys(evaluated, "ok"), alerts
    assert [r for r in alerts if r.get("lastError")] == []
    missing = [m for m, result in present.items() if not result]
    assert missing == [], f"metrics the alerts read that no process exposes: {missing}"
    # A worker that answers its scrapes: the down alert's expression is empty.
    assert evaluated["SLAProcessorDown"] == []
