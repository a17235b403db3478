"""What the end-to-end benchmark times: the processor, the baselines it is compared with, and
the processor with Faust's tuning knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    key: str
    label: str
    kind: str  # processor | tuned | faust | aiokafka | quix
    store: str = "memory://"
    table: bool = True
    knobs: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # settings for the processor's worker

    @property
    def is_processor(self) -> bool:
        return self.kind in ("processor", "tuned")


THROUGHPUT = [
    Candidate("processor-memory", "processor, memory://", "processor"),
    Candidate("processor-rocksdb", "processor, rocksdb://", "processor", store="rocksdb://"),
    Candidate("faust-table", "bare Faust agent + table (memory)", "faust"),
    Candidate("faust-bare", "bare Faust agent, no table", "faust", table=False),
    Candidate("aiokafka", "raw aiokafka loop (getmany, loads, produce, commit)", "aiokafka"),
    Candidate("quix", "Quix Streams, state = last value (memory store)", "quix"),
    # What keeping each ticket's timeline costs (a second table write per event).
    Candidate(
        "processor-no-timeline",
        "processor, memory://, SLA_TIMELINE_ENTRIES=0",
        "processor",
        env={"SLA_TIMELINE_ENTRIES": "0"},
    ),
]

_ALL_KNOBS: dict[str, Any] = {
    "loop": "uvloop",
    "broker_commit_every": 100_000,
    "broker_commit_interval": 10.0,
    "stream_buffer_maxsize": 16_384,
    "producer_linger": 0.05,
    "stream_wait_empty": False,
}
KNOBS = [
    Candidate("tuned-none", "processor via bench wrapper, no knob (control)", "tuned"),
    *(
        Candidate(f"tuned-{name}", f"{name}={value!r}", "tuned", knobs={name: value})
        for name, value in _ALL_KNOBS.items()
    ),
    Candidate("tuned-all", "all of the above together", "tuned", knobs=dict(_ALL_KNOBS)),
]


# Does producer_linger help the processor more than it helps the bare-Faust baseline?
SUPPLEMENTARY = [
    THROUGHPUT[2],  # bare Faust + table, defaults
    Candidate(
        "faust-table-linger",
        "bare Faust agent + table, producer_linger=0.05",
        "faust",
        knobs={"producer_linger": 0.05},
    ),
    THROUGHPUT[0],  # the processor, defaults
    Candidate(
        "tuned-producer_linger",
        "processor (bench wrapper), producer_linger=0.05",
        "tuned",
        knobs={"producer_linger": 0.05},
    ),
]
