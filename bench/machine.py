"""The machine a benchmark runs on: what it is, how busy it is, and what a process uses of it.

CPU and memory are read from /proc (Linux, as every benchmark here); `describe` is the
environment block every result file starts with.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def nproc() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe() -> dict[str, Any]:
    """Machine, CPU, cores, memory and Python: the head of every result file."""
    return {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "nproc": nproc(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class LoadLog:
    """The 1/5/15-minute load averages noted just before each run of a benchmark."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def note(self, what: str) -> list[float]:
        load = loadavg()
        self.entries.append({"at": now_iso(), "what": what, "loadavg": load})
        return load


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def wait_quiet(threshold: float, poll: float, limit: float) -> dict[str, Any]:
    """Wait until the 1-minute load average is at most `threshold` (at most `limit` seconds)."""
    started = time.monotonic()
    trace = []
    while True:
        load = os.getloadavg()
        trace.append([round(time.monotonic() - started), round(load[0], 2)])
        if load[0] <= threshold:
            break
        if time.monotonic() - started + poll > limit:
            print(
                f"bench: load {load[0]:.2f} still above {threshold} after {limit:.0f} s; going on",
                flush=True,
            )
            break
        print(f"bench: 1-min load {load[0]:.2f} > {threshold}; waiting", flush=True)
        time.sleep(poll)
    return {
        "threshold": threshold,
        "waited_s": round(time.monotonic() - started),
        "quiet": load[0] <= threshold,
        "trace": trace,
    }


# -- what a process uses ------------------------------------------------------------------------


def proc_cpu(pid: int | None) -> float:
    """utime+stime of a process in seconds (0 if gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in parts[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK


def proc_status(pid: int, name: str) -> int | None:
    """A `VmRSS`/`VmHWM` line of /proc/PID/status in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_mib(pid: int | None) -> float:
    """A process's resident set now, MiB (0 if gone)."""
    return round((proc_status(pid or 0, "VmRSS") or 0) / 2**20, 1)


def own_rss_mib() -> float:
    """This process's resident set now, MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def own_peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes; these benchmarks target the Linux host).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def settled_rss(pid: int) -> int:
    """RSS once the worker is idle: the median of 5 readings over 2 s, after 3 s of quiet."""
    await asyncio.sleep(3)
    readings = []
    for _ in range(5):
        value = proc_status(pid, "VmRSS")
        if value is None:
            raise RuntimeError("worker gone")
        readings.append(value)
        await asyncio.sleep(0.5)
    return int(statistics.median(readings))


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class Sample:
    """CPU seconds so far of the measured process, the broker, this runner and the machine."""

    t: float
    candidate: float
    broker: float
    runner: float
    machine: float


def sample(pid: int, broker: int | None) -> Sample:
    return Sample(
        time.time(), proc_cpu(pid), proc_cpu(broker), proc_cpu(os.getpid()), machine_busy()
    )


def at(samples: Sequence[Sample], t: float) -> Sample:
    """The sample closest to time t."""
    return min(samples, key=lambda s: abs(s.t - t))
