"""/healthz and /readyz on a real worker: not ready until it joined its group and rebuilt its
partitions' deadline indexes, then ready and live; both say why in JSON."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from .worker_harness import Worker


def test_ready_once_joined_and_indexed_live_throughout(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    worker = Worker(kafka_bootstrap, tmp_path / "worker")
    worker.create_topics()
    worker.child.start()
    seen: list[tuple[int, dict[str, object], int]] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                status, answer = worker.get("/readyz")
            except OSError:  # the web port is not open yet
                time.sleep(0.05)
                continue
            live, _ = worker.get("/healthz")
            seen.append((status, orjson.loads(answer), live))
            if status == 200:
                break
            time.sleep(0.05)
        worker.child.wait_ready(30)
        final_live, live_body = worker.get("/healthz")
    finally:
        worker.stop()
    statuses = [status for status, _, _ in seen]
    assert statuses[-1] == 200, worker.tail()
    ready = seen[-1][1]
    assert ready["status"] == "ok"
    assert ready["checks"]["partitions"] == [0, 1, 2, 3]
    assert ready["checks"]["partitions_not_indexed"] == []
    # Before: not ready, saying why (not joined yet, or rebalancing, or recovering).
    assert 503 in statuses, seen
    first = next(answer for status, answer, _ in seen if status == 503)
    assert first["status"] == "fail"
    why = first["checks"]
    assert (
        not why["joined"]
        or why["rebalancing"]
        or why["recovering"]
        or why["partitions_not_indexed"]
    )
    assert {live for _, _, live in seen} == {200}
    assert final_live == 200
    checks = orjson.loads(live_body)["checks"]
    assert checks["deadline_loop"]["ok"]
    assert checks["deadline_loop"]["seconds_since_round"] < 2
    assert checks["stream"]["ok"]
