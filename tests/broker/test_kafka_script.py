"""deploy/kafka/kafka.sh: start/stop twice in a row on its own port, nothing left behind.

Uses its own broker (not the session one), same version as the session broker
(SLA_TEST_KAFKA_VERSION or the script's default).
"""

from __future__ import annotations

import shutil
import subprocess

from .helpers import REPO_ROOT, broker_pids, free_port_pair, kafka_ready, kafka_sh


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def test_start_stop_twice_leaves_no_process(kafka_version: str | None) -> None:
    port = free_port_pair()
    data_dir = REPO_ROOT / "var" / f"kafka-script-test-{port}"
    args = ["--port", str(port), "--dir", str(data_dir)]
    if kafka_version:
        args += ["--version", kafka_version]
    props = data_dir / "server.properties"
    pid_file = data_dir / "kafka.pid"
    try:
        for round_no in (1, 2):
            started = kafka_sh("start", *args, timeout=900)
            assert started.returncode == 0, f"round {round_no}: {_explain(started)}"
            assert "broker answers" in started.stdout, _explain(started)
            pid = int(pid_file.read_text())
            assert broker_pids(props) == [pid]
            ok, detail = kafka_ready.wait_ready(f"127.0.0.1:{port}", timeout=5)
            assert ok, detail

            status = kafka_sh("status", *args, timeout=60)
            assert status.returncode == 0, _explain(status)

            again = kafka_sh("start", *args, timeout=120)
            assert again.returncode == 0, _explain(again)
            assert "already running" in again.stdout, _explain(again)
            assert broker_pids(props) == [pid], "a second start must not start another JVM"

            stopped = kafka_sh("stop", *args, timeout=120)
            assert stopped.returncode == 0, _explain(stopped)
            assert not pid_file.exists()
            assert broker_pids(props) == [], "a broker JVM survived stop"

            status = kafka_sh("status", *args, timeout=60)
            assert status.returncode == 1, _explain(status)
            stopped_again = kafka_sh("stop", *args, timeout=60)
            assert stopped_again.returncode == 0, _explain(stopped_again)
        # formatted once, reused on the second start
        assert (data_dir / "data" / "meta.properties").is_file()
    finally:
        kafka_sh("stop", *args, timeout=120)
        leftover = broker_pids(props)
        shutil.rmtree(data_dir, ignore_errors=True)
    assert leftover == []
