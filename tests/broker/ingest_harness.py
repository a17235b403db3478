"""A real `sla-processor ingest` in a subprocess, configured like a test's worker."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import orjson

from processor.spawn import WorkerProcess, free_port, tail

from .helpers import REPO_ROOT
from .worker_harness import Worker

INGEST = (sys.executable, "-m", "processor", "ingest")


@dataclass
class Ingest:
    """`sla-processor ingest` in a child process, configured like `worker`."""

    worker: Worker
    send_timeout: float = 10.0

    def __post_init__(self) -> None:
        self.port = free_port()
        env = {**self.worker.env, "SLA_INGEST_PORT": str(self.port),
               "SLA_INGEST_SEND_TIMEOUT_SECONDS": str(self.send_timeout)}  # fmt: skip
        self.log = self.worker.data_dir / "ingest.log"
        self.child = WorkerProcess(env, self.log, command=INGEST, cwd=REPO_ROOT)

    def start(self, timeout: float = 30.0) -> None:
        self.child.start()
        deadline = time.monotonic() + timeout
        while self.request("GET", "/healthz")[0] != 200:
            process = self.child.process
            assert process is not None
            assert process.poll() is None, tail(self.log)
            assert time.monotonic() < deadline, tail(self.log)
            time.sleep(0.2)

    def stop(self) -> int | None:
        return self.child.stop()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        return request(self.port, method, path, body)

    def post(self, source: str, payload: Any) -> tuple[int, Any]:
        return self.request("POST", f"/webhooks/{source}", orjson.dumps(payload))


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """The status and the body (JSON parsed, text for /metrics); (0, None) when nothing answers."""
    call = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(call, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, None
    return status, raw.decode() if path == "/metrics" else orjson.loads(raw or b"{}")
