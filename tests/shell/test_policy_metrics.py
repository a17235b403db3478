"""Series the policy will count, created at zero when the worker starts."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from processor.metrics import Metrics
from processor.sla.policy import load_policy

POLICY = load_policy()


def test_the_series_a_policy_will_count_exist_at_zero_from_the_start() -> None:
    extended = load_policy(Path(__file__).parents[2] / "examples" / "policies" / "extended.toml")
    for policy, expected in ((POLICY, set()), (extended, {("urgent", "1"), ("urgent", "2"),
                             ("urgent", "3"), ("high", "1"), ("high", "2"), ("high", "3")})):  # fmt: skip
        registry = CollectorRegistry()
        Metrics(registry).expect(policy)
        found = {
            (s.labels["severity"], s.labels["step"])
            for metric in registry.collect()
            if metric.name == "sla_escalations_unacknowledged"
            for s in metric.samples
            if s.name.endswith("_total") and s.value == 0
        }
        assert found == expected
