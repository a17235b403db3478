"""deploy/grafana/: the dashboard is what its builder gives, loads into Grafana's schema models
unchanged, and uses the provisioned datasource; the live queries are checked against a real
Prometheus in tests/broker/test_prometheus_live.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sla-processor.json"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", GRAFANA / "build_dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_committed_dashboard_is_what_the_builder_gives() -> None:
    assert DASHBOARD.read_text() == builder().render(), (
        "run: .venv/bin/python deploy/grafana/build_dashboard.py"
    )


def test_it_loads_into_grafanas_schema_models_unchanged() -> None:
    board = committed()
    model = Dashboard.from_json(board)
    assert json.loads(JSONEncoder(sort_keys=True).encode(model)) == board
    assert (model.uid, model.title) == ("sla-processor", "SLA processor")


def test_every_panel_queries_the_provisioned_prometheus() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    panels = [p for p in committed()["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/sla-processor.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_it_shows_what_an_operator_watches() -> None:
    titles = {p["title"] for p in committed()["panels"]}
    wanted = {"Events processed", "Consumer lag", "Open tickets by severity", "Breaches",
              "Escalations by step", "Timer lateness", "Dead letters by reason", "Held deadlines"}  # fmt: skip
    assert wanted <= titles
    exprs = builder().queries(committed())
    for metric in ("sla_events_processed_total", "sla_consumer_lag", "sla_open_tickets",
                   "sla_breaches_total", "sla_escalations_total", "sla_timer_lateness_seconds_bucket",
                   "sla_events_rejected_total", "sla_held_partitions", "sla_deadline_hold_seconds"):  # fmt: skip
        assert any(metric in expr for expr in exprs), metric
