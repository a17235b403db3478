"""What every candidate shares: its configuration and the first/last record markers (stdlib only)."""

from __future__ import annotations

import os
import sys
import time


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"{name} is not set")
    return value


def mark(line: str) -> None:
    """Append `BENCH <line>` to the BENCH_MARKERS file (stdout if unset): frameworks such as
    Faust redirect stdout into their logging, which would reformat the line."""
    path = os.environ.get("BENCH_MARKERS")
    if path:
        with open(path, "a") as out:
            out.write(f"BENCH {line}\n")
    else:
        print(f"BENCH {line}", flush=True)


class Marker:
    """Prints `BENCH first <t>` on the first record and `BENCH last <t>` on the BENCH_EXPECT-th."""

    def __init__(self) -> None:
        self.expect = int(env("BENCH_EXPECT"))
        self.count = 0
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            mark(f"first {time.time():.6f}")

    def seen(self, n: int = 1) -> None:
        self.start()
        before = self.count
        self.count += n
        if before < self.expect <= self.count:
            mark(f"last {time.time():.6f}")
