#!/usr/bin/env python3
"""Protocol-level readiness check for a Kafka broker (stdlib only).

    python3 deploy/kafka/kafka_ready.py HOST:PORT [--timeout SECONDS] [--quiet]

Exit 0 once the broker answers ApiVersions and then a Metadata request that lists at
least one (i.e. unfenced) broker and a controller id. An open port is not enough: a
KRaft broker that is still catching up on metadata or is fenced lists no brokers.
Retries until --timeout (default 0 = one attempt). Exit 1 if it never answered.

Used by deploy/kafka/kafka.sh (start, status) and tests/broker/conftest.py.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"kafka-ready"


class ProtocolError(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProtocolError("short response")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", "replace")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProtocolError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def _call(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> _Reader:
    header = struct.pack(">hhih", api_key, version, corr, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    reader = _Reader(_recv_exact(sock, size))
    if reader.take(">i") != corr:
        raise ProtocolError("correlation id mismatch")
    return reader


def probe(host: str, port: int, timeout: float = 5.0) -> dict[str, object]:
    """One attempt. Returns facts about the broker or raises OSError/ProtocolError."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        # ApiVersions v0: every broker version answers it (kept by KIP-896).
        r = _call(sock, API_VERSIONS, 0, 1, b"")
        error = r.take(">h")
        if error != 0:
            raise ProtocolError(f"ApiVersions error code {error}")
        ranges: dict[int, tuple[int, int]] = {}
        for _ in range(r.take(">i")):
            key, lo, hi = r.take(">h"), r.take(">h"), r.take(">h")
            ranges[key] = (lo, hi)
        if API_METADATA not in ranges:
            raise ProtocolError("broker lists no Metadata API")
        lo, hi = ranges[API_METADATA]
        version = min(hi, 8)  # v1..v8 are non-flexible and parsed below
        if version < max(lo, 1):
            raise ProtocolError(f"no Metadata version in 1..8 (broker offers {lo}..{hi})")
        body = struct.pack(">i", 0)  # empty topic list = no topics (v1+)
        if version >= 4:
            body += b"\x00"  # allow_auto_topic_creation = false
        if version >= 8:
            body += b"\x00\x00"  # no authorized operations
        r = _call(sock, API_METADATA, version, 2, body)
        if version >= 3:
            r.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(r.take(">i")):
            node_id = r.take(">i")
            bhost = r.string()
            bport = r.take(">i")
            r.string()  # rack
            brokers.append((node_id, bhost, bport))
        cluster_id = r.string() if version >= 2 else None
        controller_id = r.take(">i")
        return {
            "brokers": brokers,
            "cluster_id": cluster_id,
            "controller_id": controller_id,
            "metadata_version": version,
            "api_versions": len(ranges),
        }


def is_ready(facts: dict[str, object]) -> bool:
    brokers = facts["brokers"]
    controller_id = facts["controller_id"]
    return bool(brokers) and isinstance(controller_id, int) and controller_id >= 0


def wait_ready(bootstrap: str, timeout: float = 0.0, interval: float = 0.5) -> tuple[bool, str]:
    host, _, port_s = bootstrap.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    port = int(port_s)
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        try:
            facts = probe(host, port, timeout=min(5.0, max(timeout, 1.0)))
            if is_ready(facts):
                return True, (
                    f"brokers={facts['brokers']} controller={facts['controller_id']} "
                    f"cluster_id={facts['cluster_id']} metadata_v={facts['metadata_version']}"
                )
            last = f"answered but not ready yet: {facts}"
        except (OSError, ProtocolError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return False, last
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap", help="HOST:PORT")
    parser.add_argument("--timeout", type=float, default=0.0, help="keep retrying this long")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    ok, detail = wait_ready(args.bootstrap, timeout=args.timeout)
    if not args.quiet:
        print(("ready: " if ok else "not ready: ") + detail, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
