"""The processor with Faust tuning knobs it does not read from its settings yet.

Builds the app exactly as `python -m processor worker` does (Settings from SLA_*,
`processor.worker.assemble`, the same faust.Worker arguments), then sets the `app.conf` fields
named in BENCH_KNOBS (a JSON object) before the worker starts. `"loop": "uvloop"` selects the
event loop the way faust's `--loop` option does (mode.loop.use, before any loop exists).

To the BENCH_MARKERS file it writes `BENCH conf-warning ...` for every warning the late conf
assignment raised and `BENCH effective {...}` with the values the running consumer and producer
actually use.
With BENCH_TRACEMALLOC set, it traces allocations (slow: diagnostics only).
"""

from __future__ import annotations

import gc
import json
import os
import tracemalloc
import warnings
from pathlib import Path

import mode.loop

if os.environ.get("BENCH_TRACEMALLOC"):
    tracemalloc.start(1)

KNOBS: dict[str, object] = json.loads(os.environ.get("BENCH_KNOBS") or "{}")
_LOOP = KNOBS.pop("loop", None)
if _LOOP:
    mode.loop.use(str(_LOOP))

import asyncio  # noqa: E402

import faust  # noqa: E402

from bench.candidates.common import mark  # noqa: E402
from processor.logs import logging_config  # noqa: E402
from processor.settings import Settings  # noqa: E402
from processor.sla.policy import load_policy  # noqa: E402
from processor.worker import assemble  # noqa: E402


async def traced_memory() -> None:
    """With BENCH_TRACEMALLOC=<trigger file>: whenever the runner writes a label to the trigger
    file, write `BENCH tracemalloc <label> {...}`: the live traced bytes after a full collection
    and the 25 biggest allocation sites (file:line) by size."""
    trigger = Path(os.environ["BENCH_TRACEMALLOC"])
    while True:
        await asyncio.sleep(0.2)
        if not trigger.exists():
            continue
        label = trigger.read_text().strip()
        trigger.unlink()
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        stats = snapshot.statistics("lineno")
        top = [
            [f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno}",
             s.size, s.count]
            for s in stats[:25]
        ]  # fmt: skip
        found = {"traced": sum(s.size for s in stats), "blocks": sum(s.count for s in stats),
                 "top": top}  # fmt: skip
        mark(f"tracemalloc {label} {json.dumps(found)}")


def main() -> None:
    settings = Settings()
    policy = load_policy(settings.policy_file)
    topology, _ = assemble(settings, policy)
    app = topology.app
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, value in KNOBS.items():
            setattr(app.conf, name, value)
    for warning in caught:
        message = " ".join(str(warning.message).split())
        mark(f"conf-warning {warning.category.__name__}: {message}")

    async def report_effective() -> None:
        while app.consumer is None or app.producer is None:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        consumer, producer = app.consumer, app.producer
        effective = {
            "loop": type(asyncio.get_running_loop()).__module__,
            "conf": {name: getattr(app.conf, name) for name in KNOBS},
            "consumer._commit_every": getattr(consumer, "_commit_every", None),
            "consumer.commit_interval": getattr(consumer, "commit_interval", None),
            "producer.linger_ms": getattr(producer, "linger_ms", None),
            "stream_buffer_maxsize": app.conf.stream_buffer_maxsize,
            "stream_wait_empty": app.conf.stream_wait_empty,
        }
        mark(f"effective {json.dumps(effective, default=str)}")

    app.task(report_effective)
    if os.environ.get("BENCH_TRACEMALLOC"):
        app.task(traced_memory)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level),
        quiet=True,
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
