"""The ingest's HTTP answers, with a publisher that records instead of Kafka (tests/broker/
test_ingest.py runs it against the real broker): what is published, and what is refused whole."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from processor.ingest import IngestConfigError
from processor.ingest.publisher import Publisher, Unavailable
from processor.ingest.server import Ingest
from processor.settings import Settings
from schemas.cloudevents import STRUCTURED

from .test_binding import OPENED

TOKEN = "s3cret-token-of-32-characters-xx"


class Recording(Publisher):
    """Records what would be sent; `down` makes it answer as an unreachable Kafka."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.down = False

    @property
    def ready(self) -> bool:
        return not self.down

    async def connect(self) -> Any:
        if self.down:
            raise Unavailable("Kafka cannot be reached: KafkaConnectionError")

    async def publish(self, records: Iterable[tuple[str, bytes, bytes]]) -> None:
        batch = list(records)
        await self.connect()
        self.sent.extend(batch)


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(topic_tickets="in.tickets", topic_maintenance="in.maintenance", **overrides)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with _client(_settings(tmp_path, ingest_max_request_bytes=4096)) as c:
        yield c


class _client:
    def __init__(self, settings: Settings) -> None:
        self.ingest = Ingest(settings, Recording(settings))

    async def __aenter__(self) -> TestClient[Any, Any]:
        self.client = TestClient(TestServer(self.ingest.app()))
        await self.client.start_server()
        self.client.ingest = self.ingest  # type: ignore[attr-defined]
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()


def _sent(client: TestClient[Any, Any]) -> list[tuple[str, bytes, bytes]]:
    return client.ingest.publisher.sent  # type: ignore[attr-defined, no-any-return]


async def test_an_event_is_published_keyed_by_subject_to_its_topic(
    client: TestClient[Any, Any],
) -> None:
    maintenance = {"specversion": "1.0", "id": "m-1", "source": "cab", "subject": "M-1",
                   "type": "maintenance.cancelled", "time": "2026-12-01T09:00:00Z"}  # fmt: skip
    for body in (OPENED, maintenance):
        response = await client.post("/events", data=orjson.dumps(body),
                                     headers={"Content-Type": STRUCTURED})  # fmt: skip
        assert response.status == 202
        assert await response.json() == {"published": 1, "ids": [body["id"]]}
    assert _sent(client) == [
        ("in.tickets", b"T-1", orjson.dumps(OPENED)),
        ("in.maintenance", b"M-1", orjson.dumps(maintenance)),
    ]


async def test_a_refused_request_publishes_nothing_and_is_counted(
    client: TestClient[Any, Any],
) -> None:
    bad = [OPENED, {**OPENED, "id": "e-2", "time": "not a time"}]
    response = await client.post("/events", data=orjson.dumps(bad),
                                  headers={"Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_envelope"
    assert _sent(client) == []
    scrape = await (await client.get("/metrics")).text()
    assert (
        'sla_ingest_refused_requests_total{reason="invalid_envelope",route="cloudevents"} 1.0'
        in scrape
    )
    assert 'sla_ingest_requests_total{code="400",route="cloudevents"} 1.0' in scrape


async def test_a_request_over_the_size_limit_is_413_even_compressed(
    client: TestClient[Any, Any],
) -> None:
    # 4 KiB allowed: a 100 KiB JSON body gzipped to a few hundred bytes is refused as it inflates.
    body = orjson.dumps({**OPENED, "data": {**OPENED["data"], "problem_type": "x" * 100_000}})
    packed = gzip.compress(body)
    assert len(packed) < 4096
    response = await client.post("/events", data=packed, headers={
        "Content-Type": STRUCTURED, "Content-Encoding": "gzip"})  # fmt: skip
    assert response.status == 413
    assert (await response.json())["error"] == "too_large"
    assert _sent(client) == []


async def test_a_gzipped_event_within_the_limit_is_taken(client: TestClient[Any, Any]) -> None:
    response = await client.post("/events", data=gzip.compress(orjson.dumps(OPENED)), headers={
        "Content-Type": STRUCTURED, "Content-Encoding": "gzip"})  # fmt: skip
    assert response.status == 202
    assert len(_sent(client)) == 1


async def test_kafka_unreachable_is_503_with_retry_after(client: TestClient[Any, Any]) -> None:
    client.ingest.publisher.down = True  # type: ignore[attr-defined]
    response = await client.post("/events", data=orjson.dumps(OPENED),
                                 headers={"Content-Type": STRUCTURED})  # fmt: skip
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["error"] == "kafka_unavailable"
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200
    scrape = await (await client.get("/metrics")).text()
    assert "sla_ingest_kafka_connected 0.0" in scrape


async def test_unknown_source_is_404(client: TestClient[Any, Any]) -> None:
    response = await client.post("/webhooks/freshdesk", data=b"{}")
    assert response.status == 404
    assert "zendesk" in (await response.json())["message"]


async def test_the_webhook_validation_handshake(client: TestClient[Any, Any]) -> None:
    response = await client.options("/events", headers={"WebHook-Request-Origin": "desk.example"})
    assert response.status == 200
    assert response.headers["WebHook-Allowed-Origin"] == "desk.example"


async def test_bearer_tokens_guard_the_posts(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# rotated 2026-12\n{TOKEN}\nanother-token-0123456789\n")
    async with _client(_settings(tmp_path, ingest_token_file=tokens)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Basic {TOKEN}"}):  # fmt: skip
            response = await client.post("/events", data=orjson.dumps(OPENED),
                                         headers={"Content-Type": STRUCTURED, **headers})  # fmt: skip
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert _sent(client) == []
        for token in (TOKEN, "another-token-0123456789"):
            response = await client.post("/events", data=orjson.dumps(OPENED), headers={
                "Content-Type": STRUCTURED, "Authorization": f"Bearer {token}"})  # fmt: skip
            assert response.status == 202
        assert (await client.get("/metrics")).status == 200  # scrapes need no token


def test_short_tokens_and_open_network_binds_are_refused(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("short\n")
    with pytest.raises(IngestConfigError, match="16 characters"):
        Ingest(_settings(tmp_path, ingest_token_file=tokens))
    with pytest.raises(ValueError, match="reachable from the network"):
        _settings(tmp_path, ingest_host="0.0.0.0")
    tokens.write_text(TOKEN)
    assert _settings(tmp_path, ingest_host="0.0.0.0", ingest_token_file=tokens)


async def test_a_webhook_is_mapped_published_ignored_or_refused(
    client: TestClient[Any, Any],
) -> None:
    from .flows import FLOWS, sample

    flow = FLOWS["zendesk"]()
    response = await client.post("/webhooks/zendesk", data=orjson.dumps(flow[0]))
    assert response.status == 202
    assert (await response.json())["ids"] == [f"zendesk:{flow[0]['id']}:opened"]
    [(topic, key, value)] = _sent(client)
    assert (topic, key, orjson.loads(value)["type"]) == ("in.tickets", b"5158", "ticket.opened")
    # A customer's comment is nothing the SLA uses: 200, nothing published.
    response = await client.post("/webhooks/zendesk", data=orjson.dumps(flow[4]))
    assert (response.status, await response.json()) == (
        200, {"published": 0, "ids": [], "ignored": True})  # fmt: skip
    for body, status, reason in (
        (b"{", 400, "malformed_json"),
        (orjson.dumps({"hello": "world"}), 422, "unmapped_event"),
        (orjson.dumps({**flow[0], "time": "2025-01-08"}), 422, "bad_time"),  # no offset
        (orjson.dumps({**flow[0], "detail": {**flow[0]["detail"], "id": "x" * 300}}), 422,
         "invalid_envelope"),
    ):  # fmt: skip
        response = await client.post("/webhooks/zendesk", data=body)
        assert (response.status, (await response.json())["error"]) == (status, reason)
    assert len(_sent(client)) == 1
    jira = await client.post("/webhooks/jira", data=orjson.dumps(sample("jira/issue_updated.json")))
    assert jira.status == 200
    scrape = await (await client.get("/metrics")).text()
    assert 'sla_ingest_events_total{route="zendesk",type="ticket.opened"} 1.0' in scrape
    assert 'sla_ingest_refused_requests_total{reason="bad_time",route="zendesk"} 1.0' in scrape


SECRET = "jira-webhook-secret-0123456789"


def _hub(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _zendesk(body: bytes, stamp: str, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body,
                                     hashlib.sha256).digest()).decode()  # fmt: skip


async def test_signed_webhooks_are_taken_without_a_token(tmp_path: Path) -> None:
    """Jira's WebHooks cannot send a bearer token; they sign with a shared secret (and Zendesk's
    can): a valid signature stands for the token, a missing or wrong one is refused."""
    from .flows import FLOWS

    tokens, secrets = tmp_path / "tokens", tmp_path / "secrets"
    tokens.write_text(TOKEN)
    secrets.write_text(f"# source secret\njira {SECRET}\nzendesk zendesk-secret-0123456789\n")
    settings = _settings(tmp_path, ingest_token_file=tokens, ingest_webhook_secrets_file=secrets)
    async with _client(settings) as client:
        body = orjson.dumps(FLOWS["jira"]()[0])
        for headers, status in (
            ({}, 401),
            ({"X-Hub-Signature": _hub(body, "another-secret-0123456789")}, 401),
            ({"X-Hub-Signature": _hub(body + b" ")}, 401),
            ({"X-Hub-Signature": "sha1=" + _hub(body)[7:]}, 401),
            ({"X-Hub-Signature": _hub(body)}, 202),
            ({"X-Hub-Signature-256": _hub(body).upper().replace("SHA256", "sha256")}, 202),
            ({"Authorization": f"Bearer {TOKEN}"}, 202),  # a token still does
        ):
            response = await client.post("/webhooks/jira", data=body, headers=headers)
            assert response.status == status, headers
        body = orjson.dumps(FLOWS["zendesk"]()[0])
        stamp = "2025-01-08T10:12:08Z"
        good = {"X-Zendesk-Webhook-Signature-Timestamp": stamp,
                "X-Zendesk-Webhook-Signature": _zendesk(body, stamp, "zendesk-secret-0123456789")}  # fmt: skip
        assert (await client.post("/webhooks/zendesk", data=body, headers=good)).status == 202
        forged = {**good, "X-Zendesk-Webhook-Signature-Timestamp": "2025-01-08T10:12:09Z"}
        assert (await client.post("/webhooks/zendesk", data=body, headers=forged)).status == 401
        # A signature is no key to the other routes: /events and servicenow need the token.
        response = await client.post("/webhooks/servicenow", data=b"{}",
                                     headers={"X-Hub-Signature": _hub(b"{}")})  # fmt: skip
        assert response.status == 401
        assert len(_sent(client)) == 4


async def test_a_secret_alone_guards_its_source(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text(f"jira {SECRET}\n")
    async with _client(_settings(tmp_path, ingest_webhook_secrets_file=secrets)) as client:
        body = orjson.dumps(_jira_opened())
        assert (await client.post("/webhooks/jira", data=body)).status == 401
        assert (await client.post("/webhooks/jira", data=body,
                                  headers={"X-Hub-Signature": _hub(body)})).status == 202  # fmt: skip
        response = await client.post("/events", data=orjson.dumps(OPENED),
                                     headers={"Content-Type": STRUCTURED})  # fmt: skip
        assert response.status == 202  # loopback, no tokens: /events is open


def _jira_opened() -> dict[str, Any]:
    from .flows import FLOWS

    return FLOWS["jira"]()[0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("servicenow a-secret-of-enough-length", "no mapping of a signing source 'servicenow'"),
        ("jira short", "16 characters"),
        ("freshdesk a-secret-of-enough-length", "no mapping of a signing source"),
    ],
)
def test_a_secrets_file_is_checked(tmp_path: Path, line: str, message: str) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text(f"{line}\n")
    with pytest.raises(IngestConfigError, match=message) as refused:
        Ingest(_settings(tmp_path, ingest_webhook_secrets_file=secrets))
    assert "enough-length" not in str(refused.value)  # never the secret
    assert "line 1" in str(refused.value)


async def test_a_2_mb_record_compressed_to_kilobytes_is_413_at_the_default_limit(
    tmp_path: Path,
) -> None:
    body = orjson.dumps({**OPENED, "data": {**OPENED["data"], "problem_type": "y" * 2_000_000}})
    packed = gzip.compress(body)
    assert len(packed) < 10_000
    async with _client(_settings(tmp_path)) as client:
        response = await client.post("/events", data=packed, headers={
            "Content-Type": STRUCTURED, "Content-Encoding": "gzip"})  # fmt: skip
        assert response.status == 413
        assert "1048576 bytes" in (await response.json())["message"]
        batch = orjson.dumps([OPENED] * 501)
        response = await client.post("/events", data=batch, headers={
            "Content-Type": "application/cloudevents-batch+json"})  # fmt: skip
        assert (response.status, (await response.json())["error"]) == (413, "too_many_events")
        assert _sent(client) == []


async def test_a_webhook_that_maps_to_too_many_events_is_413(tmp_path: Path) -> None:
    from .flows import FLOWS

    update = FLOWS["jira"]()[2]  # a priority change: one changelog item, one event
    update["changelog"]["items"] *= 11
    async with _client(_settings(tmp_path, ingest_max_batch_events=10)) as client:
        response = await client.post("/webhooks/jira", data=orjson.dumps(update))
        assert (response.status, (await response.json())["error"]) == (413, "too_many_events")
        update["changelog"]["items"] = update["changelog"]["items"][:10]
        response = await client.post("/webhooks/jira", data=orjson.dumps(update))
        assert response.status == 202
        assert len(_sent(client)) == 10
