"""The broker a benchmark runs against: its own (deploy/kafka/kafka.sh on a port and a
directory of its own, stopped at the end) unless `--bootstrap` names one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.results import REPO


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    version: str  # "unknown" for a broker given by --bootstrap that we did not start
    pid: int | None  # for its CPU; None when not known


def kafka_sh(*args: str) -> None:
    subprocess.run(["bash", str(REPO / "deploy/kafka/kafka.sh"), *args], check=True, cwd=REPO)


@contextmanager
def broker(
    bootstrap: str | None, version: str | None, port: int, directory: str
) -> Iterator[Broker]:
    """The broker at `bootstrap`, or one started on 127.0.0.1:`port` with its files in
    `directory` (relative to the repository) and stopped on exit. A `bootstrap` on `port` whose
    pid file is in `directory` (one left running by an earlier benchmark) is known by its pid
    and version."""
    pid_file, version_file = REPO / directory / "kafka.pid", REPO / directory / "kafka.version"
    if bootstrap is not None:
        if bootstrap.endswith(f":{port}") and pid_file.exists():
            yield Broker(bootstrap, version_file.read_text().strip(), int(pid_file.read_text()))
        else:
            yield Broker(bootstrap, version or "unknown", None)
        return
    kafka_sh("start", "--port", str(port), "--dir", directory)
    try:
        yield Broker(
            f"127.0.0.1:{port}", version_file.read_text().strip(), int(pid_file.read_text().strip())
        )
    finally:
        kafka_sh("stop", "--port", str(port), "--dir", directory)
