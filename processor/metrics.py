"""Every Prometheus metric of the processor, created against an injectable registry.

Labels are bounded: topic, event type, reason code, severity, tier, step, target, partition.
Never a ticket, customer or maintenance id.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from processor.sla.policy import Policy

# Timer lateness is emitted-minus-due: most firings land within tens of milliseconds.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Acknowledgement latency: minutes, against windows of 15 min to hours.
ACKNOWLEDGEMENT_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0)


@dataclass(frozen=True, slots=True)
class Gauges:
    """Values read at scrape time from the worker's own bookkeeping (no per-event gauge writes)."""

    open_tickets: Callable[[], Mapping[tuple[str, str], int]]
    pending_deadlines: Callable[[], int]
    consumer_lag: Callable[[], Mapping[tuple[str, int], int]]
    held_partitions: Callable[[], int]
    oldest_hold: Callable[[], float]
    kafka_connection_errors: Callable[[], int]
    kafka_unreachable: Callable[[], float]


class _ScrapeTimeCollector(Collector):
    def __init__(self, gauges: Gauges) -> None:
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        tickets = GaugeMetricFamily(
            "sla_open_tickets", "Open tickets owned by this worker.", labels=["severity", "tier"]
        )
        for (severity, tier), count in sorted(self._gauges.open_tickets().items()):
            tickets.add_metric([severity, tier], count)
        yield tickets
        yield GaugeMetricFamily(
            "sla_pending_deadlines",
            "Armed deadlines in this worker's deadline indexes.",
            value=self._gauges.pending_deadlines(),
        )
        lag = GaugeMetricFamily(
            "sla_consumer_lag",
            "Records between the committed offset and the high watermark.",
            labels=["topic", "partition"],
        )
        for (topic, partition), records in sorted(self._gauges.consumer_lag().items()):
            lag.add_metric([topic, str(partition)], records)
        yield lag
        yield GaugeMetricFamily(
            "sla_held_partitions",
            "Owned partitions with deadlines due whose tick waits until the input records that "
            "were in Kafka when it was decided are applied.",
            value=self._gauges.held_partitions(),
        )
        yield GaugeMetricFamily(
            "sla_deadline_hold_seconds",
            "How long the longest-waiting decided tick has waited for its inputs (0: none waits).",
            value=self._gauges.oldest_hold(),
        )
        yield CounterMetricFamily(
            "sla_kafka_connection_errors",
            "Errors of the Kafka client reaching a broker (logged once per outage, not each).",
            value=self._gauges.kafka_connection_errors(),
        )
        yield GaugeMetricFamily(
            "sla_kafka_unreachable_seconds",
            "How long the brokers have been unreachable (0: reachable, or no error for 10 s).",
            value=self._gauges.kafka_unreachable(),
        )


class Metrics:
    """The processor's metrics; one instance per worker, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # process_* (CPU, memory, open files), python_info, python_gc_*: the platform's own.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        r.register(GC_COLLECTOR)
        Info("sla_build", "The running build: versions of the processor and its stack.",
             registry=r).info(build_info())  # fmt: skip
        self.events_processed = Counter(
            "sla_events_processed", "Input events applied.", ["topic", "type"], registry=r
        )
        self.events_rejected = Counter(
            "sla_events_rejected",
            "Input records sent to the dead-letter topic.",
            ["topic", "reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "sla_events_duplicate", "Input events ignored as repeated ids.", ["topic"], registry=r
        )
        self.escalations = Counter(
            "sla_escalations", "Escalation steps emitted.", ["severity", "step"], registry=r
        )
        self.breaches = Counter(
            "sla_breaches", "SLA breaches emitted.", ["target", "severity", "tier"], registry=r
        )
        self.updates_due = Counter(
            "sla_updates_due", "Update-due reminders emitted.", ["severity"], registry=r
        )
        self.notices = Counter(
            "sla_maintenance_notices", "Change-management outputs emitted.", ["type"], registry=r
        )
        self.warnings = Counter(
            "sla_warnings",
            "Warnings before a deadline emitted.",
            ["target", "severity"],
            registry=r,
        )
        self.unacknowledged = Counter(
            "sla_escalations_unacknowledged",
            "Escalation steps not acknowledged within the policy's window (each window missed).",
            ["severity", "step"],
            registry=r,
        )
        self.acknowledgement = Histogram(
            "sla_escalation_acknowledgement_seconds",
            "From an escalation step to its acknowledgement (steps the policy awaits).",
            ["severity", "step"],
            buckets=ACKNOWLEDGEMENT_BUCKETS,
            registry=r,
        )
        self.retractions = Counter(
            "sla_retractions",
            "Outputs retracted because a late event would have cancelled them; breaches net of "
            'corrections: sla_breaches_total - sla_retractions_total{retracted_type="sla.breach"}.',
            ["retracted_type"],
            registry=r,
        )
        self.surveys = Counter(
            "sla_surveys_due", "Satisfaction surveys due.", ["severity"], registry=r
        )
        self.timer_lateness = Histogram(
            "sla_timer_lateness_seconds",
            "Emission time minus due time of outputs fired by timers.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.tick_hold = Histogram(
            "sla_tick_hold_seconds",
            "From deciding a tick (taking its inputs' end offsets) to firing it in the stream or "
            "sending it, once they are applied: the lateness a lag behind the inputs adds.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.ticks_released = Counter(
            "sla_ticks_released",
            "Held ticks whose inputs were applied, by route: fired with the next record of the "
            "partition already in hand (record), or sent through the ticks topic (topic).",
            ["route"],
            registry=r,
        )
        self.ticks_ignored = Counter(
            "sla_ticks_ignored",
            "Tick records ignored: decided by an earlier owner of the partition (or malformed).",
            registry=r,
        )
        self.recovery_stalls = Counter(
            "sla_recovery_stalls",
            # 5 s: processor.faust_fixes.recovery_stall.STALL_SECONDS (not imported: Faust's
            # import is not for the ingest process; a test keeps the two the same)
            "Changelog recoveries that made no progress for 5 s with records left, and were "
            "sought again (the log's `recovery stalled` lines).",
            registry=r,
        )
        self.rebuilds = Histogram(
            "sla_deadline_index_rebuild_seconds",
            "Time to rebuild a partition's deadline index from its tables.",
            registry=r,
        )

    def expect(self, policy: Policy) -> None:
        """Create the series the policy will count at zero, so that a rate over them (and the
        alert on missed acknowledgements) has data from the start, not from the first miss."""
        for severity, rule in policy.acknowledgement.items():
            for step in policy.ladders.get(severity, ()):
                if rule.steps is None or step.number in rule.steps:
                    self.unacknowledged.labels(severity.value, str(step.number))

    def watch(self, gauges: Gauges) -> None:
        self.registry.register(_ScrapeTimeCollector(gauges))


def build_info() -> dict[str, str]:
    """Label values of sla_build_info: one series per build, bounded."""

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "unknown"

    return {
        "version": of("sla-processor"),
        "python": platform.python_version(),
        "faust": of("faust-streaming"),
        "aiokafka": of("aiokafka"),
    }


# Request latency: a local broker acknowledges in milliseconds, a remote one in tens.
INGEST_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True)
class IngestMetrics:
    """The HTTP ingest's metrics (a process of its own, its own registry and /metrics)."""

    registry: CollectorRegistry
    requests: Counter
    events: Counter
    refused: Counter
    seconds: Histogram
    ready: Gauge

    @classmethod
    def create(cls, routes: Iterable[str]) -> IngestMetrics:
        registry = CollectorRegistry()
        metrics = cls(
            registry=registry,
            requests=Counter("sla_ingest_requests", "HTTP requests by route and status code.",
                             ["route", "code"], registry=registry),
            events=Counter("sla_ingest_events", "Events published to Kafka, by route and type.",
                           ["route", "type"], registry=registry),
            refused=Counter("sla_ingest_refused_requests", "Requests refused, by route and "
                            "reason (nothing of them published).", ["route", "reason"],
                            registry=registry),
            seconds=Histogram("sla_ingest_request_seconds", "Time from request to answer, "
                              "Kafka's acknowledgement included.", ["route"],
                              buckets=INGEST_LATENCY_BUCKETS, registry=registry),
            ready=Gauge("sla_ingest_kafka_connected", "1 while the producer is connected.",
                        registry=registry),
        )  # fmt: skip
        for route in routes:
            metrics.seconds.labels(route)
            for code in ("202", "400", "503"):
                metrics.requests.labels(route, code)
        return metrics
