"""`sla-processor ingest`: an HTTP server that publishes accepted events to the input topics.

Routes:
    POST /events               CloudEvents HTTP binding: structured, binary or batched mode
    POST /webhooks/{source}    a help desk's webhook, mapped by its mapping (mapping.py)
    OPTIONS /events, /webhooks/{source}  the CloudEvents webhook validation handshake
    GET /metrics, /healthz, /readyz

A request is answered 202 only once Kafka acknowledged every record of it (acks=all, an
idempotent producer), 4xx with the reason when it is refused (nothing is published), 503 with
Retry-After when Kafka did not acknowledge in time: the sender retries, and the events' ids make
a retry a repeat that the workers ignore.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import logging.config
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from processor.ingest import IngestConfigError, binding, mapping
from processor.ingest.binding import Accepted, Refused
from processor.logs import logging_config
from processor.settings import Settings
from processor.topology import client_options
from schemas.cloudevents import STRUCTURED, TICKET_TYPES, InvalidEvent, parse_event

log = logging.getLogger("processor.ingest")

HEADERS: Final = [("content-type", STRUCTURED.encode())]
RETRY_AFTER_SECONDS: Final = 5
# Request latency: a local broker acknowledges in milliseconds, a remote one in tens.
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_JSON: Final = "application/json"
# A webhook let through on its signature header, to be checked against the body once read.
_SIGNED_BY: Final = web.RequestKey("signed_by", str)


class Unavailable(Exception):
    """Kafka did not acknowledge in time, or cannot be reached."""


class Publisher:
    """An idempotent producer, started on first use and again after a fatal error."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._timeout = settings.ingest_send_timeout_seconds
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._producer is not None

    async def connect(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                timeout_ms = int(self._timeout * 1000)
                producer = AIOKafkaProducer(
                    **client_options(self._settings),
                    client_id=f"{self._settings.app_id}-ingest",
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=max(timeout_ms, 1000),
                    max_request_size=2 * self._settings.ingest_max_request_bytes,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await producer.stop()
                    raise Unavailable(f"Kafka cannot be reached: {type(exc).__name__}") from None
                self._producer = producer
                log.info("connected to Kafka", extra={"event": "kafka_connected"})
            return self._producer

    async def publish(self, records: Iterable[tuple[str, bytes, bytes]]) -> None:
        """Send every (topic, key, value) and wait until each is acknowledged, or Unavailable."""
        deadline = time.monotonic() + self._timeout
        producer = await self.connect()
        try:
            sent = []
            for topic, key, value in records:
                remaining = max(deadline - time.monotonic(), 0.001)
                sent.append(await asyncio.wait_for(
                    producer.send(topic, value, key=key, headers=HEADERS), remaining
                ))  # fmt: skip
            # Not wait_for: the records stay queued, and a later delivery is a harmless repeat.
            done, pending = await asyncio.wait(sent, timeout=max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise Unavailable("Kafka did not take the records in time") from None
        except KafkaError as exc:
            await self._reset(exc)
            raise Unavailable(f"Kafka refused: {type(exc).__name__}") from None
        if pending:
            raise Unavailable("Kafka did not acknowledge in time")
        for future in done:
            failed = future.exception()
            if failed is not None:
                await self._reset(failed)
                raise Unavailable(f"Kafka refused: {type(failed).__name__}")

    async def _reset(self, exc: BaseException) -> None:
        """A producer whose error is not retriable is replaced (a fresh producer id)."""
        if getattr(exc, "retriable", True):
            return
        async with self._lock:
            producer, self._producer = self._producer, None
        log.warning("producer restarted", extra={"event": "producer_restarted",
                                                 "error": type(exc).__name__})  # fmt: skip
        if producer is not None:
            await producer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # sends what is queued first


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    events: Counter
    refused: Counter
    seconds: Histogram
    ready: Gauge

    @classmethod
    def create(cls, routes: Iterable[str]) -> Metrics:
        registry = CollectorRegistry()
        metrics = cls(
            registry=registry,
            requests=Counter("sla_ingest_requests", "HTTP requests by route and status code.",
                             ["route", "code"], registry=registry),
            events=Counter("sla_ingest_events", "Events published to Kafka, by route and type.",
                           ["route", "type"], registry=registry),
            refused=Counter("sla_ingest_refused_requests", "Requests refused, by route and "
                            "reason (nothing of them published).", ["route", "reason"],
                            registry=registry),
            seconds=Histogram("sla_ingest_request_seconds", "Time from request to answer, "
                              "Kafka's acknowledgement included.", ["route"],
                              buckets=LATENCY_BUCKETS, registry=registry),
            ready=Gauge("sla_ingest_kafka_connected", "1 while the producer is connected.",
                        registry=registry),
        )  # fmt: skip
        for route in routes:
            metrics.seconds.labels(route)
            for code in ("202", "400", "503"):
                metrics.requests.labels(route, code)
        return metrics


def _answer(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON,
                        headers=headers)  # fmt: skip


class Ingest:
    """The application: routes, authentication, and the publisher."""

    def __init__(self, settings: Settings, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.mappings = mapping.load_all(settings.ingest_mappings_dir)
        self.publisher = publisher or Publisher(settings)
        self.metrics = Metrics.create(["cloudevents", *self.mappings])
        self.tokens = _tokens(settings)
        self.secrets = _secrets(settings, self.mappings)
        self.topics = {True: settings.topic_tickets, False: settings.topic_maintenance}

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.ingest_max_request_bytes,
            middlewares=[self._guard],
        )
        app.router.add_post("/events", self.cloudevents)
        app.router.add_route("OPTIONS", "/events", self.handshake)
        app.router.add_post("/webhooks/{source}", self.webhook)
        app.router.add_route("OPTIONS", "/webhooks/{source}", self.handshake)
        app.router.add_get("/metrics", self.scrape)
        app.router.add_get("/healthz", self.live)
        app.router.add_get("/readyz", self.readiness)
        app.on_cleanup.append(lambda _: self.publisher.close())
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method not in ("POST", "OPTIONS") or self._authorised(request):
            return await handler(request)
        source = request.match_info.get("source", "")
        if request.method == "POST" and source in self.secrets:
            request[_SIGNED_BY] = source  # verified once the body is read
            return await handler(request)
        if self.tokens:
            return self._unauthorised(
                _route(request, self.mappings), "a valid bearer token is required"
            )
        return await handler(request)

    def _unauthorised(self, route: str, message: str) -> web.Response:
        self.metrics.requests.labels(route, "401").inc()
        self.metrics.refused.labels(route, "unauthorised").inc()
        log.info("refused", extra={"event": "refused", "route": route, "reason": "unauthorised",
                                   "status": 401})  # fmt: skip
        return _answer(401, {"error": "unauthorised", "message": message},
                       **{"WWW-Authenticate": 'Bearer realm="sla-ingest"'})  # fmt: skip

    def _signed(self, request: web.Request, source: str, body: bytes) -> bool:
        """The webhook carries its source's signature of `body` (HMAC-SHA256, the secret's)."""
        secret, scheme = self.secrets[source], self.mappings[source].signature
        headers = request.headers
        if scheme == "hub-sha256":
            given = headers.get("X-Hub-Signature-256") or headers.get("X-Hub-Signature") or ""
            method, _, digest = given.partition("=")
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
            return method.lower() == "sha256" and hmac.compare_digest(digest.lower(), expected)
        if scheme == "zendesk":
            stamp = headers.get("X-Zendesk-Webhook-Signature-Timestamp", "").encode()
            mac = hmac.new(secret, stamp + body, hashlib.sha256).digest()
            given = headers.get("X-Zendesk-Webhook-Signature", "")
            return bool(stamp) and hmac.compare_digest(given, base64.b64encode(mac).decode())
        return False

    def _authorised(self, request: web.Request) -> bool:
        """A valid bearer token, or none needed (no tokens, no secret for the source)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not self.tokens and request.match_info.get("source", "") not in self.secrets:
            return True
        if scheme.lower() != "bearer" or not token or not self.tokens:
            return False
        given = token.strip().encode()
        # Every token compared, each in constant time: no timing tells which one nearly matched.
        return sum(hmac.compare_digest(given, known) for known in self.tokens) > 0

    async def handshake(self, request: web.Request) -> web.Response:
        """CloudEvents' HTTP 1.1 Web Hooks, abuse protection: the origin is allowed to send."""
        origin = request.headers.get("WebHook-Request-Origin")
        headers = {"Allow": "POST, OPTIONS"}
        if origin:
            headers |= {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"}
        return web.Response(status=200, headers=headers)

    async def cloudevents(self, request: web.Request) -> web.Response:
        async def accepted(body: bytes) -> list[Accepted]:
            return binding.events(request.headers.get("Content-Type"), request.headers, body,
                                  max_batch=self.settings.ingest_max_batch_events)  # fmt: skip

        return await self._handle(request, "cloudevents", accepted)

    async def webhook(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        chosen = self.mappings.get(source)
        if chosen is None:
            self.metrics.requests.labels("unknown", "404").inc()
            return _answer(404, {"error": "unknown_source", "message": "no mapping for this "
                                 f"source; the mapped ones: {', '.join(self.mappings)}"})  # fmt: skip

        async def accepted(body: bytes) -> list[Accepted]:
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise Refused(400, "malformed_json", f"not valid JSON: {exc.msg}") from None
            try:
                found = mapping.events(chosen, payload)
            except mapping.Unmapped as exc:
                raise Refused(422, exc.reason, f"{source}: {exc}") from None
            limit = self.settings.ingest_max_batch_events
            if len(found) > limit:  # a list under `each` is the payload's to make long
                raise Refused(413, "too_many_events", f"{source}: the webhook maps to "
                              f"{len(found)} events, the limit is {limit} "
                              "(SLA_INGEST_MAX_BATCH_EVENTS)")  # fmt: skip
            events = []
            for raw in found:
                try:
                    events.append(Accepted(parse_event(raw), raw))
                except InvalidEvent as exc:
                    raise Refused(422, exc.reason, f"{source}: the mapped event: {exc}") from None
            return events

        return await self._handle(request, source, accepted)

    async def _handle(
        self,
        request: web.Request,
        route: str,
        accepted: Callable[[bytes], Awaitable[list[Accepted]]],
    ) -> web.Response:
        started = time.monotonic()
        response = await self._answered(request, route, accepted)
        self.metrics.requests.labels(route, str(response.status)).inc()
        self.metrics.seconds.labels(route).observe(time.monotonic() - started)
        return response

    async def _answered(
        self,
        request: web.Request,
        route: str,
        accepted: Callable[[bytes], Awaitable[list[Accepted]]],
    ) -> web.Response:
        try:
            body = await request.read()
            signer = request.get(_SIGNED_BY)
            if signer is not None and not self._signed(request, signer, body):
                return self._unauthorised(route, "a valid signature or bearer token is required")
            events = await accepted(body)
        except web.HTTPRequestEntityTooLarge:
            limit = self.settings.ingest_max_request_bytes
            return self._refused(route, Refused(413, "too_large", f"the request is larger than "
                                 f"{limit} bytes (SLA_INGEST_MAX_REQUEST_BYTES)"))  # fmt: skip
        except Refused as exc:
            return self._refused(route, exc)
        if not events:
            return _answer(200, {"published": 0, "ids": [], "ignored": True})
        try:
            await self.publisher.publish(
                (self.topics[a.event.type in TICKET_TYPES], a.event.subject.encode(), a.raw)
                for a in events
            )
        except Unavailable as exc:
            log.warning("Kafka unavailable: answered 503", extra={
                "event": "unavailable", "route": route, "reason": str(exc)})  # fmt: skip
            self.metrics.ready.set(int(self.publisher.ready))
            return _answer(503, {"error": "kafka_unavailable", "message": str(exc)},
                           **{"Retry-After": str(RETRY_AFTER_SECONDS)})  # fmt: skip
        self.metrics.ready.set(1)
        for a in events:
            self.metrics.events.labels(route, a.event.type).inc()
        ids = [a.event.id for a in events]
        log.debug("published", extra={"event": "published", "route": route, "ids": ids})
        return _answer(202, {"published": len(ids), "ids": ids})

    def _refused(self, route: str, exc: Refused) -> web.Response:
        self.metrics.refused.labels(route, exc.reason).inc()
        log.info("refused", extra={"event": "refused", "route": route, "reason": exc.reason,
                                   "status": exc.status})  # fmt: skip
        return _answer(exc.status, {"error": exc.reason, "message": str(exc)})

    async def scrape(self, request: web.Request) -> web.Response:
        self.metrics.ready.set(int(self.publisher.ready))
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        response = web.Response(body=encoder(self.metrics.registry))
        response.headers["Content-Type"] = content_type
        return response

    async def live(self, request: web.Request) -> web.Response:
        return _answer(200, {"status": "ok"})

    async def readiness(self, request: web.Request) -> web.Response:
        if self.publisher.ready:
            return _answer(200, {"status": "ready"})
        try:
            await self.publisher.connect()
        except Unavailable as exc:
            return _answer(503, {"status": "kafka_unavailable", "message": str(exc)})
        return _answer(200, {"status": "ready"})


def _route(request: web.Request, mappings: dict[str, mapping.Mapping]) -> str:
    source = request.match_info.get("source")
    if source is None:
        return "cloudevents"
    return source if source in mappings else "unknown"


def _tokens(settings: Settings) -> list[bytes]:
    if settings.ingest_token_file is None:
        return []
    lines = settings.ingest_token_file.read_text().splitlines()
    tokens = [line.strip().encode() for line in lines if line.strip() and not line.startswith("#")]
    if not tokens or any(len(token) < 16 for token in tokens):
        raise IngestConfigError(f"{settings.ingest_token_file}: tokens of 16 characters at least, one "
                         "a line (SLA_INGEST_TOKEN_FILE)")  # fmt: skip
    return tokens


def _secrets(settings: Settings, mappings: dict[str, mapping.Mapping]) -> dict[str, bytes]:
    file = settings.ingest_webhook_secrets_file
    if file is None:
        return {}
    secrets = {}
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        source, _, secret = line.strip().partition(" ")
        where = f"{file}: line {number}"
        if source not in mappings or mappings[source].signature is None:
            raise IngestConfigError(f"{where}: no mapping of a signing source {source!r} "
                                    "(a mapping with `signature`)")  # fmt: skip
        if len(secret.strip()) < 16:
            raise IngestConfigError(f"{where}: a secret of 16 characters at least")
        secrets[source] = secret.strip().encode()
    return secrets


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.ingest_tls_certfile is None or settings.ingest_tls_keyfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.ingest_tls_certfile, settings.ingest_tls_keyfile)
    if settings.ingest_tls_client_cafile is not None:
        context.load_verify_locations(settings.ingest_tls_client_cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    ingest = Ingest(settings)
    runner = web.AppRunner(ingest.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.ingest_host, settings.ingest_port,
                       ssl_context=tls_context(settings))  # fmt: skip
    await site.start()
    log.info("ingest listening", extra={"event": "listening", "host": settings.ingest_host,
             "port": settings.ingest_port, "sources": sorted(ingest.mappings)})  # fmt: skip
    try:
        await ingest.publisher.connect()
    except Unavailable as exc:
        log.warning("Kafka not reachable yet", extra={"event": "unavailable", "reason": str(exc)})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # answers the requests in flight, then closes the producer
        log.info("ingest stopped", extra={"event": "stopped"})


def run(settings: Settings) -> int:
    logging.config.dictConfig(logging_config(settings.log_level))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0
