"""Prometheus config and alerting rules: promtool checks plus structural checks.

promtool is required, never skipped: on Debian/Ubuntu `apt-get install prometheus`
provides /usr/bin/promtool (the server the package starts is not needed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "sla.rules.yml"
RULES_TEST = PROMETHEUS_DIR / "rules" / "sla.rules.test.yml"

# The processor's metric contract (processor side: prometheus_client, prefix sla_).
METRICS = {
    "sla_events_processed_total": "counter",
    "sla_events_rejected_total": "counter",
    "sla_escalations_total": "counter",
    "sla_breaches_total": "counter",
    "sla_updates_due_total": "counter",
    "sla_open_tickets": "gauge",
    "sla_pending_deadlines": "gauge",
    "sla_timer_lateness_seconds": "histogram",
    "sla_consumer_lag": "gauge",
    "sla_tick_hold_seconds": "histogram",
    "sla_deadline_hold_seconds": "gauge",
    "sla_held_partitions": "gauge",
    "sla_kafka_unreachable_seconds": "gauge",
    "sla_kafka_connection_errors_total": "counter",
    "sla_escalations_unacknowledged_total": "counter",
    # The HTTP ingest's (its own process and scrape job).
    "sla_ingest_requests_total": "counter",
    "sla_ingest_refused_requests_total": "counter",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

ALERTS = {
    "SLABreachRateHigh": "warning",
    "SLATimerLatenessHigh": "critical",
    "SLATimerLatenessFromLag": "warning",
    "SLADeadLetterRateHigh": "warning",
    "SLAProcessorDown": "critical",
    "SLAConsumerLagHigh": "warning",
    "SLAKafkaUnreachable": "critical",
    "SLAEscalationUnacknowledged": "critical",
    "SLAIngestKafkaUnavailable": "critical",
    "SLAIngestRefusing": "warning",
}
ANNOTATIONS = {"summary", "description", "runbook_url"}
OPERATIONS = REPO / "docs" / "operations.md"


def _promtool_path() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH; install it with `apt-get install prometheus` "
            "(Debian/Ubuntu; only /usr/bin/promtool is needed, the server can stay stopped)",
            pytrace=False,
        )
    return path


def _promtool(*args: str) -> None:
    result = subprocess.run(
        [_promtool_path(), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def test_promtool_check_config() -> None:
    # Also loads rule_files, resolved relative to prometheus.yml (as in the container).
    _promtool("check", "config", str(PROMETHEUS_CONFIG.relative_to(REPO)))


def test_promtool_check_rules() -> None:
    _promtool("check", "rules", str(RULES.relative_to(REPO)))


def test_promtool_test_rules() -> None:
    _promtool("test", "rules", str(RULES_TEST.relative_to(REPO)))


# ------------------------------------------------------------------- structure


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def alert_rules() -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for group in _load(RULES)["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["alert"] not in rules, f"duplicate alert {rule['alert']}"
                rules[rule["alert"]] = rule
    return rules


def test_alert_names_and_severities(alert_rules: dict[str, dict[str, Any]]) -> None:
    assert {name: rule["labels"]["severity"] for name, rule in alert_rules.items()} == ALERTS


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_summary_description_and_runbook(
    alert_rules: dict[str, dict[str, Any]], name: str
) -> None:
    annotations = alert_rules[name].get("annotations", {})
    assert set(annotations) >= ANNOTATIONS
    for key in ANNOTATIONS:
        assert str(annotations[key]).strip(), f"{name}: empty {key}"
    assert alert_rules[name].get("for"), f"{name}: needs a `for` duration against flapping"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_runbook_url_names_a_section_of_the_operations_page(
    alert_rules: dict[str, dict[str, Any]], name: str
) -> None:
    page, _, anchor = alert_rules[name]["annotations"]["runbook_url"].partition("#")
    assert REPO / page == OPERATIONS
    headings = re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchor in anchors, f"{name}: no heading for #{anchor} in docs/operations.md"


def test_rules_only_use_metrics_the_processor_exposes(
    alert_rules: dict[str, dict[str, Any]],
) -> None:
    for name, rule in alert_rules.items():
        for metric in re.findall(r"\bsla_[a-z_]+", rule["expr"]):
            base = metric
            for suffix in HISTOGRAM_SUFFIXES:
                if metric.endswith(suffix) and metric.removesuffix(suffix) in METRICS:
                    base = metric.removesuffix(suffix)
                    assert METRICS[base] == "histogram", f"{name}: {metric} on a non-histogram"
            assert base in METRICS, f"{name}: {metric} is not a metric the processor exposes"
            if METRICS[base] == "counter":
                assert re.search(rf"(rate|increase)\(\s*{metric}\b", rule["expr"]), (
                    f"{name}: counter {metric} must be used through rate()/increase()"
                )


def test_processor_down_watches_the_scrape_job(alert_rules: dict[str, dict[str, Any]]) -> None:
    scrape_jobs = {job["job_name"] for job in _load(PROMETHEUS_CONFIG)["scrape_configs"]}
    expr = alert_rules["SLAProcessorDown"]["expr"]
    assert 'up{job="sla-processor"} == 0' in expr
    assert 'absent(up{job="sla-processor"})' in expr
    assert "sla-processor" in scrape_jobs


def test_rule_unit_tests_cover_each_alert_firing_and_not_firing() -> None:
    unit = _load(RULES_TEST)
    assert unit["rule_files"] == [RULES.name]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in unit["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing == set(ALERTS), f"no firing case for {sorted(set(ALERTS) - firing)}"
    assert silent == set(ALERTS), f"no not-firing case for {sorted(set(ALERTS) - silent)}"
