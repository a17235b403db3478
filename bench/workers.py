"""A processor worker as the benchmarks run it: its settings on topics of its own, and its
/metrics read back. The process itself is processor.spawn's WorkerProcess, as in the demo and
the broker tests."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.results import REPO
from processor.settings import Settings
from processor.spawn import isolated_env
from processor.topics import create_topics

PARTITIONS = 4
DEFAULT_POLICY = REPO / "processor" / "sla" / "default_policy.toml"


def processor_env(
    bootstrap: str,
    prefix: str,
    data_dir: Path,
    store: str = "memory://",
    log_level: str = "INFO",
    policy: Path = DEFAULT_POLICY,
) -> dict[str, str]:
    """The `SLA_*` variables of a worker whose app id (and consumer group) is `prefix`, on
    topics `<prefix>.<contract name>` of PARTITIONS partitions (every output topic, the warnings'
    too), `policy` (default the default policy), a free web port."""
    env = isolated_env(f"{prefix}.", prefix, bootstrap, data_dir, PARTITIONS, policy)
    return env | {"SLA_STORE": store, "SLA_LOG_LEVEL": log_level}


async def create_worker_topics(env: dict[str, str]) -> None:
    """The topics of a worker with these `SLA_*` variables, as `sla-processor create-topics`
    makes them."""
    await create_topics(
        Settings.model_validate({k.removeprefix("SLA_").lower(): v for k, v in env.items()})
    )


def metrics(port: str | int) -> dict[str, Any]:
    """A worker's /metrics: {sample name: value summed over its labels}, and for a histogram's
    `_bucket` samples {name: {le: count}}. Empty if the worker does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
    except OSError:
        return {}
    found: dict[str, Any] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name.endswith("_bucket"):
                buckets = found.setdefault(s.name, {})
                buckets[s.labels["le"]] = buckets.get(s.labels["le"], 0.0) + s.value
            else:
                found[s.name] = found.get(s.name, 0.0) + s.value
    return found
