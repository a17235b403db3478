"""The pure core's import boundary: no Kafka, Faust, metrics, logging, environment or clock.

Checked twice: statically, by reading the source of `processor/sla/` and `schemas/` with `ast`
(imports, `os.environ`-style attributes, clock calls such as `datetime.now()`); and dynamically,
by importing the core in a fresh interpreter and looking at `sys.modules`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

REPO: Final = Path(__file__).resolve().parents[2]
CORE_FILES: Final = sorted(
    [*(REPO / "processor" / "sla").rglob("*.py"), *(REPO / "schemas").rglob("*.py")]
)

# Shell-only libraries, and modules whose only use would be logging, a clock or randomness.
FORBIDDEN_MODULES: Final = frozenset(
    {"faust", "mode", "aiokafka", "kafka", "prometheus_client", "logging", "time", "random"}
)
SHELL_LIBRARIES: Final = ("faust", "mode", "aiokafka", "prometheus_client", "rocksdict")
# `os.environ`, `os.getenv`, ...: configuration is read once, in the shell.
ENVIRONMENT: Final = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})
# Calls that read the wall clock, on `datetime`/`date` (however imported).
CLOCK_READS: Final = frozenset({"now", "utcnow", "today"})
CLOCK_OWNERS: Final = frozenset({"datetime", "date"})
# Output ids must be deterministic: uuid5 over the logical identity, never a random uuid.
RANDOM_IDS: Final = frozenset({"uuid1", "uuid4"})


@dataclass(frozen=True, slots=True)
class Violation:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


def _root(module: str) -> str:
    return module.split(".")[0]


def _owner_name(node: ast.expr) -> str | None:
    """`datetime` for `datetime.now` and for `dt.datetime.now` alike."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def violations(source: str) -> list[Violation]:
    """Everything in `source` that crosses the core's boundary."""
    found: list[Violation] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(Violation(getattr(node, "lineno", 0), what))

    for node in ast.walk(ast.parse(source)):
        match node:
            case ast.Import(names=names):
                for alias in names:
                    if _root(alias.name) in FORBIDDEN_MODULES:
                        flag(node, f"import {alias.name}")
            case ast.ImportFrom(module=module, names=names, level=0) if module:
                if _root(module) in FORBIDDEN_MODULES:
                    flag(node, f"from {module} import ...")
                for alias in names:
                    if module == "os" and alias.name in ENVIRONMENT:
                        flag(node, f"from os import {alias.name}")
                    if module == "uuid" and alias.name in RANDOM_IDS:
                        flag(node, f"from uuid import {alias.name}")
            case ast.Attribute(value=ast.Name(id="os"), attr=attr) if attr in ENVIRONMENT:
                flag(node, f"os.{attr}")
            case ast.Attribute(value=ast.Name(id="uuid"), attr=attr) if attr in RANDOM_IDS:
                flag(node, f"uuid.{attr}")
            case ast.Call(func=ast.Attribute(value=owner, attr=attr)) if attr in CLOCK_READS:
                if _owner_name(owner) in CLOCK_OWNERS:
                    flag(node, f"{_owner_name(owner)}.{attr}()")
            case ast.Call(func=ast.Name(id="__import__") | ast.Attribute(attr="import_module")):
                for arg in node.args:
                    name = arg.value if isinstance(arg, ast.Constant) else None
                    if isinstance(name, str) and _root(name) in FORBIDDEN_MODULES:
                        flag(node, f"dynamic import of {name}")
    return found


def test_the_core_files_are_found() -> None:
    names = {p.relative_to(REPO).as_posix() for p in CORE_FILES}
    assert {"processor/sla/engine.py", "processor/sla/ticket.py", "schemas/cloudevents.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_core_source_stays_inside_the_boundary(path: Path) -> None:
    found = violations(path.read_text(encoding="utf-8"))
    assert not found, "\n".join(f"{path.relative_to(REPO)} {v}" for v in found)


@pytest.mark.parametrize(
    "source",
    [
        "import faust",
        "import mode.utils.objects",
        "from aiokafka import AIOKafkaProducer",
        "import prometheus_client as prom",
        "from prometheus_client.core import Counter",
        "import logging",
        "from logging import getLogger",
        "import time",
        "from time import monotonic",
        "import os\nos.environ['SLA_X']",
        "import os\nos.getenv('SLA_X')",
        "from os import environ",
        "from datetime import datetime\ndatetime.now()",
        "from datetime import datetime, UTC\ndatetime.now(UTC)",
        "import datetime\ndatetime.datetime.utcnow()",
        "from datetime import date\ndate.today()",
        "import uuid\nuuid.uuid4()",
        "from uuid import uuid1",
        "import importlib\nimportlib.import_module('faust')",
        "__import__('logging')",
        "import random",
    ],
)
def test_the_checker_catches_each_kind_of_crossing(source: str) -> None:
    assert violations(source), f"not caught: {source!r}"


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime, time, timedelta\nt = time(9, 0)",
        "import uuid\nuuid.uuid5(uuid.NAMESPACE_URL, 'x')",
        "from processor.sla.ticket import Ticket",
        "def f(now):\n    return now.replace(tzinfo=None)",
        "import os.path",
        "from .time_zones import now",
    ],
)
def test_the_checker_lets_the_core_s_own_needs_through(source: str) -> None:
    assert violations(source) == []


def _imported_shell_libraries(*modules: str) -> list[str]:
    """Import `modules` in a fresh interpreter; the shell libraries that came along."""
    probe = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        f"roots = {list(SHELL_LIBRARIES)!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in roots)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def _core_modules() -> list[str]:
    return [
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in CORE_FILES
        if path.name != "__init__.py"
    ]


@pytest.mark.parametrize(
    "modules",
    [
        pytest.param(("processor.sla.engine",), id="engine"),
        pytest.param(tuple(_core_modules()), id="every core module"),
        # The replay shell runs the engine without Kafka; it must not drag Faust in either.
        pytest.param(("processor.cli", "processor.replay", "processor.report"), id="replay shell"),
    ],
)
def test_importing_the_core_loads_no_shell_library(modules: tuple[str, ...]) -> None:
    assert _imported_shell_libraries(*modules) == []


def test_the_probe_does_see_a_shell_library() -> None:
    """The subprocess probe itself works: importing Faust's `mode` shows up."""
    assert "mode" in _imported_shell_libraries("mode")
