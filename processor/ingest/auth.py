"""Who may post to the ingest: bearer tokens, webhook signatures, TLS and client certificates.

Errors:
    IngestConfigError(message)   -- a token or secrets file that cannot be used (never its content)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from processor.ingest import IngestConfigError
from processor.ingest.mapping import Mapping as SourceMapping
from processor.settings import Settings


@dataclass(frozen=True, slots=True)
class Credentials:
    """The tokens any request may carry, and each signing source's secret and scheme."""

    tokens: tuple[bytes, ...]
    secrets: Mapping[str, bytes]
    schemes: Mapping[str, str]

    @classmethod
    def load(cls, settings: Settings, mappings: Mapping[str, SourceMapping]) -> Credentials:
        secrets = _secrets(settings, mappings)
        schemes = {source: mappings[source].signature or "" for source in secrets}
        return cls(tuple(_tokens(settings)), secrets, schemes)

    def open_to(self, source: str) -> bool:
        """No credential is asked of a request to this route (no tokens, no secret)."""
        return not self.tokens and source not in self.secrets

    def bearer(self, authorization: str) -> bool:
        """`Authorization: Bearer <token>` with one of the tokens."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or not self.tokens:
            return False
        given = _raw(token.strip())
        # Every token compared, each in constant time: no timing tells which one nearly matched.
        return sum(hmac.compare_digest(given, known) for known in self.tokens) > 0

    def signed(self, source: str, headers: Mapping[str, str], body: bytes) -> bool:
        """The webhook carries its source's signature of `body` (HMAC-SHA256, the secret's)."""
        secret, scheme = self.secrets[source], self.schemes[source]
        if scheme == "hub-sha256":
            given = headers.get("X-Hub-Signature-256") or headers.get("X-Hub-Signature") or ""
            method, _, digest = given.partition("=")
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
            return method.lower() == "sha256" and hmac.compare_digest(
                _raw(digest.lower()), expected
            )
        if scheme == "zendesk":
            stamp = _raw(headers.get("X-Zendesk-Webhook-Signature-Timestamp", ""))
            mac = hmac.new(secret, stamp + body, hashlib.sha256).digest()
            signature = _raw(headers.get("X-Zendesk-Webhook-Signature", ""))
            return bool(stamp) and hmac.compare_digest(signature, base64.b64encode(mac))
        return False


def _raw(header: str) -> bytes:
    """A header value's bytes as sent (aiohttp decodes them as UTF-8, undecodable bytes kept as
    surrogates): compared as bytes, whatever a client sends."""
    return header.encode("utf-8", "surrogateescape")


def _tokens(settings: Settings) -> list[bytes]:
    if settings.ingest_token_file is None:
        return []
    lines = settings.ingest_token_file.read_text().splitlines()
    stripped = (line.strip() for line in lines)
    tokens = [line.encode() for line in stripped if line and not line.startswith("#")]
    if not tokens or any(len(token) < 16 for token in tokens):
        raise IngestConfigError(f"{settings.ingest_token_file}: tokens of 16 characters at least, one "
                         "a line (SLA_INGEST_TOKEN_FILE)")  # fmt: skip
    return tokens


def _secrets(settings: Settings, mappings: Mapping[str, SourceMapping]) -> dict[str, bytes]:
    file = settings.ingest_webhook_secrets_file
    if file is None:
        return {}
    secrets = {}
    for number, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
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
