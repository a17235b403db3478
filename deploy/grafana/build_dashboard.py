"""The SLA processor's Grafana dashboard, built with Grafana's own SDK (grafana-foundation-sdk,
typed from Grafana's schemas) and committed as JSON: `.venv/bin/python deploy/grafana/build_dashboard.py`
rewrites deploy/grafana/dashboards/sla-processor.json; tests/deploy/test_grafana.py checks that
doing so changes nothing, and tests/broker/test_prometheus_live.py that every query returns data
from a live worker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).resolve().parent / "dashboards" / "sla-processor.json"
SOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")  # provisioning/datasources

# (title, unit, [(PromQL, legend)], description): one time series panel each, in order.
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("Events processed", "reqps",
     [("sum by (topic) (rate(sla_events_processed_total[$__rate_interval]))", "{{topic}}")],
     "Input events applied per second."),
    ("Consumer lag", "short",
     [("sum by (topic) (sla_consumer_lag)", "{{topic}}")],
     "Records between the committed offsets and the end of each topic."),
    ("Open tickets by severity", "short",
     [("sum by (severity) (sla_open_tickets)", "{{severity}}")],
     "Open tickets owned by the workers."),
    ("Breaches", "short",
     [("sum by (severity, tier) (increase(sla_breaches_total[$__rate_interval]))",
       "{{severity}} {{tier}}")],
     "Initial-response breaches emitted."),
    ("Escalations by step", "short",
     [("sum by (step) (increase(sla_escalations_total[$__rate_interval]))", "step {{step}}")],
     "Escalation steps emitted."),
    ("Timer lateness", "s",
     [("histogram_quantile(0.5, sum by (le) (rate(sla_timer_lateness_seconds_bucket[$__rate_interval])))", "p50"),
      ("histogram_quantile(0.99, sum by (le) (rate(sla_timer_lateness_seconds_bucket[$__rate_interval])))", "p99")],
     "Emission time minus due time of outputs fired by timers."),
    ("Dead letters by reason", "short",
     [("sum by (reason) (increase(sla_events_rejected_total[$__rate_interval]))", "{{reason}}")],
     "Input records sent to the dead-letter topics."),
    ("Held deadlines", "short",
     [("sum(sla_held_partitions)", "partitions held"),
      ("max(sla_deadline_hold_seconds)", "longest hold (s)")],
     "Partitions whose due deadlines wait for the input records that were in Kafka when "
     "they fell due, and how long the longest has waited."),
    ("Worker CPU", "percentunit",
     [("rate(process_cpu_seconds_total{job=\"sla-processor\"}[$__rate_interval])", "{{instance}}")],
     "CPU of each worker process (1 = one core, the most one worker uses)."),
    ("Kafka unreachable", "s",
     [("max by (instance) (sla_kafka_unreachable_seconds)", "{{instance}}")],
     "How long each worker has had no connection to the brokers."),
    ("Ingest requests by answer", "reqps",
     [("sum by (route, code) (rate(sla_ingest_requests_total[$__rate_interval]))",
       "{{route}} {{code}}")],
     "Requests to the HTTP ingest per second, by route and status code (202 published, 200 "
     "ignored, 4xx refused, 503 Kafka unavailable)."),
    ("Ingest latency", "s",
     [("histogram_quantile(0.99, sum by (le, route) (rate(sla_ingest_request_seconds_bucket[$__rate_interval])))",
       "p99 {{route}}")],
     "Request to answer at the ingest, Kafka's acknowledgement included."),
]  # fmt: skip

# One number each, above the graphs.
STATS: list[tuple[str, str, str]] = [
    ("Workers up", "none", 'sum(up{job="sla-processor"})'),
    ("Pending deadlines", "short", "sum(sla_pending_deadlines)"),
    ("Breaches (range)", "short", "sum(increase(sla_breaches_total[$__range]))"),
    ("Dead letters (range)", "short", "sum(increase(sla_events_rejected_total[$__range]))"),
]


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("SLA processor")
        .uid("sla-processor")
        .tags(["sla-processor"])
        .refresh("30s")
        .time("now-6h", "now")
        .with_row(dashboard.Row("Overview"))
    )
    for title, unit, expr in STATS:
        board = board.with_panel(
            stat.Panel().title(title).unit(unit).datasource(SOURCE).height(4).span(6)
            .with_target(prometheus.Dataquery().expr(expr).ref_id("A"))
        )  # fmt: skip
    board = board.with_row(dashboard.Row("Stream and SLA"))
    for title, unit, queries, description in PANELS:
        panel = (
            timeseries.Panel().title(title).description(description).unit(unit)
            .datasource(SOURCE).height(8).span(12).min(0)
        )  # fmt: skip
        for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
            panel = panel.with_target(
                prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
            )
        board = board.with_panel(panel)
    return board


def render() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


if __name__ == "__main__":
    OUT.write_text(render())
    json.loads(OUT.read_text())
    sys.stdout.write(f"{OUT}\n")
