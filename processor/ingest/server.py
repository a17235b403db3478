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
import logging
import logging.config
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client.exposition import choose_encoder

from processor.ingest import binding, mapping
from processor.ingest.auth import Credentials, tls_context
from processor.ingest.binding import Accepted, Refused
from processor.ingest.publisher import Publisher, Unavailable
from processor.logs import logging_config
from processor.metrics import IngestMetrics
from processor.settings import Settings
from schemas.cloudevents import TICKET_TYPES, InvalidEvent

log = logging.getLogger("processor.ingest")

RETRY_AFTER_SECONDS: Final = 5
_JSON: Final = "application/json"
# A webhook let through on its signature header, to be checked against the body once read.
_SIGNED_BY: Final = web.RequestKey("signed_by", str)


def _answer(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type=_JSON,
                        headers=headers)  # fmt: skip


class Ingest:
    """The application: routes, authentication, and the publisher."""

    def __init__(self, settings: Settings, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.mappings = mapping.load_all(settings.ingest_mappings_dir)
        self.publisher = publisher or Publisher(settings)
        self.metrics = IngestMetrics.create(["cloudevents", *self.mappings])
        self.credentials = Credentials.load(settings, self.mappings)
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
        if request.method == "POST" and source in self.credentials.secrets:
            request[_SIGNED_BY] = source  # verified once the body is read
            return await handler(request)
        if self.credentials.tokens:
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

    def _authorised(self, request: web.Request) -> bool:
        """A valid bearer token, or none needed on this route."""
        source = request.match_info.get("source", "")
        return self.credentials.open_to(source) or self.credentials.bearer(
            request.headers.get("Authorization", "")
        )

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
                    events.append(binding.accepted(raw))
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
        try:
            response = await self._answered(request, route, accepted)
        except Exception:  # a defect, not the sender's: counted and logged (never the payload)
            log.exception("request failed", extra={"event": "failed", "route": route})
            response = _answer(500, {"error": "internal_error", "message": "the ingest failed; "
                                     "nothing is known to be published, send it again"})  # fmt: skip
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
            if signer is not None and not self.credentials.signed(signer, request.headers, body):
                return self._unauthorised(route, "a valid signature or bearer token is required")
            events = await accepted(body)
        except web.HTTPRequestEntityTooLarge:
            limit = self.settings.ingest_max_request_bytes
            return self._refused(route, Refused(413, "too_large", f"the request is larger than "
                                 f"{limit} bytes (SLA_INGEST_MAX_REQUEST_BYTES)"))  # fmt: skip
        except RequestPayloadError:
            response = self._refused(route, Refused(400, "bad_content_encoding", "the body does "
                                     "not decode as its Content-Encoding says"))  # fmt: skip
            response.force_close()  # the rest of the body is not worth reading
            return response
        except Refused as exc:
            return self._refused(route, exc)
        if not events:  # an empty batch, or a webhook of nothing the SLA uses
            ignored = {} if route == "cloudevents" else {"ignored": True}
            return _answer(200, {"published": 0, "ids": [], **ignored})
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
        ready = await self.publisher.check()
        self.metrics.ready.set(int(ready))
        if not ready:
            return _answer(503, {"status": "kafka_unavailable"})
        return _answer(200, {"status": "ready"})


def _route(request: web.Request, mappings: dict[str, mapping.Mapping]) -> str:
    """The route's metric label: bounded (a path that names no route is `unknown`)."""
    if request.match_info.http_exception is not None:
        return "unknown"
    source = request.match_info.get("source")
    if source is None:
        return "cloudevents"
    return source if source in mappings else "unknown"


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    ingest = Ingest(settings)
    runner = web.AppRunner(ingest.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.ingest_host, settings.ingest_port,
                       ssl_context=tls_context(settings))  # fmt: skip
    await site.start()
    log.info("ingest listening", extra={"event": "listening", "host": settings.ingest_host,
             "port": settings.ingest_port, "sources": sorted(ingest.mappings)})  # fmt: skip
    if not await ingest.publisher.check():
        log.warning("Kafka not reachable yet", extra={"event": "unavailable"})
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
