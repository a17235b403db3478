"""SASL_SSL with SCRAM-SHA-512 end to end, on a broker the test starts: TLS with its own CA, a
SCRAM user made when the storage is formatted. The worker and create-topics connect with the
SLA_KAFKA_* settings and process a ticket; a wrong password ends the start with exit code 4 and
is in no log line."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .helpers import REPO_ROOT, free_port_pair, kafka_sh
from .worker_harness import Worker, at, consume, event, produce

USER, PASSWORD = "sla", "s3cret-scram-password"


@dataclass(frozen=True)
class SecureBroker:
    plaintext: str  # for the test's own clients
    sasl_ssl: str  # for the processor
    ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(tls: Path) -> None:
    """A CA, and a certificate for 127.0.0.1 it signed; the broker's PEM keystore."""
    tls.mkdir(parents=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=tls)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", "broker.key", "-out", "broker.csr", cwd=tls)  # fmt: skip
    (tls / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem", cwd=tls)  # fmt: skip
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8", cwd=tls)
    keystore = (tls / "broker.pk8").read_text() + (tls / "broker.pem").read_text()
    (tls / "keystore.pem").write_text(keystore)


@pytest.fixture
def secure_broker(kafka_version: str | None, tmp_path: Path) -> Iterator[SecureBroker]:
    assert shutil.which("openssl"), "openssl is missing"
    port = free_port_pair()
    secure = free_port_pair()
    tls = tmp_path / "tls"
    _certificates(tls)
    extra = tmp_path / "sasl-ssl.properties"
    extra.write_text(
        f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure},"
        f"CONTROLLER://127.0.0.1:{port + 1}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure}\n"
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={tls / 'keystore.pem'}\n"
    )
    data_dir = REPO_ROOT / "var" / f"kafka-sasl-{port}"
    args = ["--port", str(port), "--dir", str(data_dir), "--extra-config", str(extra),
            "--scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"]  # fmt: skip
    args += ["--version", kafka_version] if kafka_version else []
    started = kafka_sh("start", *args, timeout=900)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield SecureBroker(f"127.0.0.1:{port}", f"127.0.0.1:{secure}", tls / "ca.pem")
    finally:
        kafka_sh("stop", *args, timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def _secure_env(broker: SecureBroker, password: str) -> dict[str, str]:
    return {
        "SLA_KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl,
        "SLA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SLA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "SLA_KAFKA_SASL_USERNAME": USER,
        "SLA_KAFKA_SASL_PASSWORD": password,
        "SLA_KAFKA_SSL_CAFILE": str(broker.ca),
    }


def _create_topics(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    scrubbed = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "processor", "create-topics"],
        env={**scrubbed, **env}, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_sasl_ssl_scram_end_to_end(secure_broker: SecureBroker, tmp_path: Path) -> None:
    worker = Worker(secure_broker.plaintext, tmp_path / "worker")
    env = {**worker.env, **_secure_env(secure_broker, PASSWORD)}
    made = _create_topics(env, tmp_path)
    assert made.returncode == 0, made.stderr
    assert worker.settings.topic_tickets in made.stdout.split()
    worker.env.update(_secure_env(secure_broker, PASSWORD))
    worker.start()
    try:
        data = {"customer_id": "c", "support_tier": "premium", "severity": "urgent"}
        opened = event("S-1-1", "ticket.opened", at(datetime.now(UTC), 0), "S-1", data)
        plain = secure_broker.plaintext
        asyncio.run(produce(plain, [(worker.settings.topic_tickets, b"S-1", opened)]))
        outputs = asyncio.run(consume(plain, worker.outputs, seconds=30, expect=1))
    finally:
        worker.stop()
    assert [r.key for r in outputs] == [b"S-1"], worker.tail()
    assert PASSWORD not in worker.log.read_text()


def test_a_wrong_password_ends_the_start_with_exit_code_4(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    worker = Worker(secure_broker.plaintext, tmp_path / "worker")
    wrong = "not-the-password-42"
    env = {**worker.env, **_secure_env(secure_broker, wrong)}
    made = _create_topics(env, tmp_path)
    assert made.returncode == 4, made.stderr
    assert f"over SASL_SSL (SLA_KAFKA_SECURITY_PROTOCOL) as {USER} with SCRAM-SHA-512" in (
        made.stderr
    )
    assert "Traceback" not in made.stderr
    assert wrong not in made.stderr + made.stdout
    worker.env.update(_secure_env(secure_broker, wrong))
    worker.child.start()
    assert worker.process is not None
    code = worker.process.wait(timeout=120)
    assert code == 4, worker.tail()
    log = worker.log.read_text()
    assert wrong not in log
    assert "Traceback" not in log
    assert "Authentication failed" in log or "SaslAuthenticationFailed" in log, worker.tail()
