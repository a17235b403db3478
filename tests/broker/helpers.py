"""Helpers shared by the broker tests: the kafka.sh wrapper, ports, process checks."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "kafka" / "kafka.sh"
KAFKA_READY_PY = REPO_ROOT / "deploy" / "kafka" / "kafka_ready.py"


def _load_kafka_ready() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_sla_kafka_ready", KAFKA_READY_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


kafka_ready = _load_kafka_ready()


def kafka_sh(command: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run deploy/kafka/kafka.sh; never raises on a non-zero exit (callers report it)."""
    env = dict(os.environ)
    env.setdefault("KAFKA_PYTHON", sys.executable)
    try:
        return subprocess.run(
            ["bash", str(KAFKA_SH), command, *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return subprocess.CompletedProcess(
            exc.cmd, 124, out, err + f"\n(timed out after {timeout}s)"
        )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> int:
    """A port P such that P (broker) and P+1 (controller) are both free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no free pair of adjacent ports found")


def broker_pids(server_properties: Path | None = None) -> list[int]:
    """Live (non-zombie) kafka.Kafka JVMs, optionally only those using this server.properties."""
    needle = "kafka.Kafka " + (str(server_properties) if server_properties else "")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if needle in cmdline and "\nState:\tZ" not in status:
            pids.append(int(proc.name))
    return pids


async def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create each topic with its number of partitions (replication 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, n, 1) for name, n in topics.items()])
    finally:
        await admin.close()
