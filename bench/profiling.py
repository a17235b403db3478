"""py-spy over a running worker, and what its collapsed stacks say: the share of samples per
function (own and inclusive), per package and per thread."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.results import REPO


def start_spy(pid: int, profile: dict[str, Any]) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy", path=str(REPO / ".venv/bin")) or shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    cmd = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(profile.get("rate", 100)),
        "--format",
        profile["format"],
        "--output",
        str(profile["output"]),
    ]
    if profile["format"] == "raw":
        cmd.append("--nolineno")
    profile["started"] = time.time()
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )


def top_functions(raw: Path, top: int = 25) -> dict[str, Any]:
    """Own and inclusive sample shares per function, and own share per package, from py-spy's
    collapsed stacks (`frame;frame;... count`, frames `function (file)`)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    roots: Counter[str] = Counter()  # the outermost frame: which thread the time went to
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [
            f
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        count_ = int(n)
        total += count_
        own[frames[-1]] += count_
        roots[frames[0]] += count_
        packages[package_of(frames[-1])] += count_
        for frame in set(frames):
            inclusive[frame] += count_

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * c / total, 1)] for name, c in counter.most_common(top)]

    return {
        "samples": total,
        "own_pct": share(own),
        "inclusive_pct": share(inclusive),
        "own_pct_by_package": share(packages),
        "by_root_frame": share(roots),
    }


def package_of(frame: str) -> str:
    match = re.search(r"\(([^)]*)\)\s*$", frame)
    path = match.group(1) if match else frame
    for marker, name in (("site-packages/", None), ("lib/python3", "stdlib")):
        if marker in path:
            rest = path.split(marker, 1)[1]
            if name == "stdlib":
                parts = rest.split("/")
                return "stdlib:" + (parts[1].removesuffix(".py") if len(parts) > 1 else rest)
            return rest.split("/", 1)[0].removesuffix(".py")
    if path.startswith(("processor/", "schemas/", "bench/")) or "/work/" in path:
        return "/".join(path.split("/")[-2:]) if "/" in path else path
    return path.split("/", 1)[0].removesuffix(".py")
