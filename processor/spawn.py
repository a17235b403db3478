"""A worker in a child process: the one way the demo, the broker tests and the benchmarks run it.

The child gets exactly the `SLA_*` variables given (inherited ones are dropped, so a developer's
shell cannot change a test), its stdout and stderr go to a log file, and it is ready once its log
shows Faust's `Ready` and the rebuilt deadline indexes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "processor", "worker")
READY_MARKERS = (b"Worker]: Ready", b"deadline indexes rebuilt")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> int:
    """Signal `process` and wait for it; killed if it outlives `timeout`. Its exit code."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def isolated_env(prefix: str, app_id: str, bootstrap: str, data_dir: Path | str,
                 partitions: int, policy: Path | str) -> dict[str, str]:  # fmt: skip
    """The `SLA_*` variables of a worker on topics of its own (named `<prefix><contract name>`),
    with the memory store, a free web port and INFO logs (the readiness markers are INFO)."""
    return {
        "SLA_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SLA_APP_ID": app_id,
        "SLA_TOPIC_TICKETS": prefix + "tickets.events",
        "SLA_TOPIC_MAINTENANCE": prefix + "maintenance.events",
        "SLA_TOPIC_ESCALATIONS": prefix + "sla.escalations",
        "SLA_TOPIC_UPDATES_DUE": prefix + "sla.updates-due",
        "SLA_TOPIC_BREACHES": prefix + "sla.breaches",
        "SLA_TOPIC_NOTICES": prefix + "maintenance.notices",
        "SLA_TOPIC_WARNINGS": prefix + "sla.warnings",
        "SLA_TOPIC_ACKNOWLEDGEMENTS": prefix + "sla.acknowledgements",
        "SLA_TOPIC_RETRACTIONS": prefix + "sla.retractions",
        "SLA_TOPIC_SURVEYS": prefix + "tickets.surveys",
        "SLA_TOPIC_PARTITIONS": str(partitions),
        "SLA_POLICY_FILE": str(policy),
        "SLA_STORE": "memory://",
        "SLA_DATA_DIR": str(data_dir),
        "SLA_WEB_PORT": str(free_port()),
        "SLA_LOG_LEVEL": "INFO",
    }


class WorkerFailed(RuntimeError):
    """The worker exited, or was not ready in time; the message ends with its log's tail."""


@dataclass
class WorkerProcess:
    """Successive processes of one worker: same environment, one log appended to."""

    env: Mapping[str, str]  # the worker's SLA_* variables
    log: Path
    command: Sequence[str] = WORKER_COMMAND
    cwd: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)  # non-SLA variables
    inherit: bool = True  # False: `env` is the whole environment (nothing of this process's)
    process: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0  # wall clock of the last spawn
    _log_start: int = 0  # where the last spawn's part of the log begins

    def start(self) -> float:
        """Spawn a process; the wall-clock instant it was spawned."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SLA_")}
        if not self.inherit:
            inherited = {}
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.spawned_at = time.time()
            self.process = subprocess.Popen(
                list(self.command),
                env={**inherited, **self.extra_env, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
            )
        return self.spawned_at

    def wait_ready(self, timeout: float = 90.0, poll: float = 0.2) -> None:
        """Until this spawn's log shows every READY_MARKERS; WorkerFailed if it exits first or
        takes longer than `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            process = self.process
            assert process is not None, "not started"
            if process.poll() is not None:
                raise WorkerFailed(f"worker exited {process.returncode}:\n{tail(self.log)}")
            if self.ready():
                return
            if time.monotonic() > deadline:
                raise WorkerFailed(f"worker not ready after {timeout:.0f} s:\n{tail(self.log)}")
            time.sleep(poll)

    def ready(self) -> bool:
        with self.log.open("rb") as log:
            log.seek(self._log_start)
            written = log.read()
        return all(marker in written for marker in READY_MARKERS)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Signal the process and wait for it; its exit code (None if never started)."""
        if self.process is None:
            return None
        return stop_process(self.process, sig, timeout)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid
