"""Requests that once made the ingest answer 500, or accept what a worker then refused: each is
a 4xx now, counted, and nothing of it is published."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from processor.ingest import mapping
from processor.ingest.binding import BATCH, EVENT_LIMIT
from processor.ingest.mapping import MappingError, Unmapped
from processor.ingest.server import Ingest
from processor.settings import Settings
from schemas.cloudevents import MAX_EVENT_BYTES, STRUCTURED, parse_record

from .flows import FLOWS
from .test_binding import OPENED
from .test_server import TOKEN, Recording


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    tokens, secrets = tmp_path / "tokens", tmp_path / "secrets"
    tokens.write_text(TOKEN)
    secrets.write_text("jira jira-webhook-secret-0123456789\nzendesk zendesk-secret-0123456789\n")
    settings = Settings(ingest_token_file=tokens, ingest_webhook_secrets_file=secrets)
    client = TestClient(TestServer(Ingest(settings, Recording(settings)).app()))
    await client.start_server()
    yield client
    await client.close()


async def _raw_request(client: TestClient[Any, Any], head: bytes, body: bytes) -> int:
    """The status of a request written byte for byte (headers a client library would refuse)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


@pytest.mark.parametrize(
    ("path", "header"),
    [
        (b"/events", b"Authorization: Bearer \xff\xfe"),
        (b"/webhooks/jira", b"X-Hub-Signature: sha256=\xc3\xa9"),
        (b"/webhooks/zendesk", b"X-Zendesk-Webhook-Signature: \xc3\xa9"),
        (b"/webhooks/zendesk", b"X-Zendesk-Webhook-Signature-Timestamp: \xff"),
    ],
)
async def test_undecodable_credentials_are_401(
    guarded: TestClient[Any, Any], path: bytes, header: bytes
) -> None:
    head = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n"
    assert await _raw_request(guarded, head, orjson.dumps(FLOWS["jira"]()[0])) == 401
    assert guarded.server.app is not None
    assert guarded.app.router is not None  # the server is still up
    assert (await guarded.get("/healthz")).status == 200


async def test_an_undecodable_binary_attribute_is_400(tmp_path: Path) -> None:
    settings = Settings()
    async with TestClient(TestServer(Ingest(settings, Recording(settings)).app())) as client:
        head = (b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"ce-specversion: 1.0\r\nce-id: \xff\r\nce-source: s\r\n"
                b"ce-type: ticket.responded\r\nce-time: 2026-12-01T09:00:00Z\r\nce-subject: T\r\n")  # fmt: skip
        assert await _raw_request(client, head, b"{}") == 400
        # A body that is not what its Content-Encoding says.
        response = await client.post("/events", data=b"not gzip", headers={
            "Content-Type": STRUCTURED, "Content-Encoding": "gzip"})  # fmt: skip
        assert (response.status, (await response.json())["error"]) == (400, "bad_content_encoding")
        # A path that names no route is counted as such, not as /events.
        assert (await client.post("/nowhere", data=b"{}")).status == 404
        assert client.server.app is not None


async def test_what_is_accepted_fits_a_workers_limit_with_its_headers(tmp_path: Path) -> None:
    settings = Settings()
    publisher = Recording(settings)
    async with TestClient(TestServer(Ingest(settings, publisher).app())) as client:
        # Padded with an extension attribute (the envelope ignores those, the size counts it).
        pad = EVENT_LIMIT - len(orjson.dumps({**OPENED, "padding": ""}))
        for size, status in ((EVENT_LIMIT, 202), (EVENT_LIMIT + 1, 413), (MAX_EVENT_BYTES, 413)):
            body = orjson.dumps({**OPENED, "padding": "p" * (pad + size - EVENT_LIMIT)})
            assert len(body) == size
            response = await client.post("/events", data=body, headers={"Content-Type": STRUCTURED})
            assert response.status == status, size
        [(_, _, value)] = publisher.sent
        # The worker's parser, headers counted, takes the largest one the ingest accepted.
        assert parse_record(value, [("content-type", STRUCTURED.encode())]).subject == "T-1"
        # Binary mode is measured as published (aiohttp bounds each header to 8 KiB: nine
        # extension attributes of 7,500 bytes make a 68 KB event).
        extensions = {f"ce-pad{n}": "a" * 7500 for n in range(9)}
        response = await client.post("/events", data=b"{}", headers={
            "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
            "ce-source": "s", "ce-type": "ticket.responded", "ce-subject": "T-1",
            "ce-time": "2026-12-01T09:00:00Z", **extensions})  # fmt: skip
        assert (response.status, (await response.json())["error"]) == (413, "too_large")
        # An empty batch: nothing to publish, nothing ignored.
        response = await client.post("/events", data=b"[]", headers={"Content-Type": BATCH})
        assert (response.status, await response.json()) == (200, {"published": 0, "ids": []})
        assert len(publisher.sent) == 1


@pytest.mark.parametrize("stamp", [[1], {"ms": 1}, True, -(10**15), 10**20, "1e400"])
def test_an_epoch_of_another_kind_is_bad_time(stamp: Any) -> None:
    payload = {**FLOWS["jira"]()[0], "timestamp": stamp}
    with pytest.raises(Unmapped) as refused:
        mapping.events(mapping.load("jira"), payload)
    assert refused.value.reason == "bad_time"


def test_an_instant_without_offset_is_bad_time() -> None:
    for moment in ("2025-01-08T10:12:07", "2025-01-08"):
        payload = {**FLOWS["zendesk"]()[0], "time": moment}
        with pytest.raises(Unmapped, match="with an offset"):
            mapping.events(mapping.load("zendesk"), payload)


def test_a_value_is_never_read_as_template(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text(
        'source = "x"\nsubject = "{{{id}}}"\ntime = "{t}"\n[[event]]\nname = "a"\n'
        'when = {}\ntype = "ticket.closed"\nid = "x:{id}:}}"\n'
    )
    found = mapping.events(mapping.load("x", tmp_path), {"id": "A}}B{c}", "t": "2026-12-01T09:00Z"})
    event = orjson.loads(found[0])
    assert (event["subject"], event["id"]) == ("{A}}B{c}}", "x:A}}B{c}:}")


@pytest.mark.parametrize(
    ("when", "named"),
    [
        ('{ kind = { not = { like = "x" } } }', "unknown operator 'like'"),
        ("{ kind = { same_as = 3 } }", "same_as takes a string"),
        ('{ kind = { same_as = "a..b" } }', "not a dotted path"),
        ('{ kind = { present = "yes" } }', "present takes true or false"),
        ("{ kind = [{ a = 1 }] }", "the options of a list are values"),
    ],
)
def test_a_condition_is_checked_at_any_depth(tmp_path: Path, when: str, named: str) -> None:
    (tmp_path / "x.toml").write_text(
        f'source = "x"\nsubject = "{{a}}"\ntime = "{{t}}"\n[[event]]\nname = "a"\n'
        f'when = {when}\ntype = "ticket.closed"\nid = "{{a}}"\n'
    )
    with pytest.raises(MappingError, match=named):
        mapping.load("x", tmp_path)


async def test_requests_do_not_queue_behind_a_kafka_that_does_not_answer(tmp_path: Path) -> None:
    """A broker address that accepts connections and never answers: every request is 503
    within the send timeout, not one timeout after another."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{silent.getsockname()[1]}",
                        ingest_send_timeout_seconds=1.0)  # fmt: skip
    try:
        async with TestClient(TestServer(Ingest(settings).app())) as client:
            started = time.monotonic()

            async def post() -> int:
                body = gzip.compress(orjson.dumps(OPENED))
                response = await client.post("/events", data=body, headers={
                    "Content-Type": STRUCTURED, "Content-Encoding": "gzip"})  # fmt: skip
                return response.status

            statuses = await asyncio.gather(*(post() for _ in range(5)))
            elapsed = time.monotonic() - started
            assert statuses == [503] * 5
            assert elapsed < 3.0, f"{elapsed:.1f} s for five requests"
            assert (await client.get("/readyz")).status == 503
    finally:
        silent.close()
