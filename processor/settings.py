"""The processor's configuration: one frozen settings object read from `SLA_*` environment variables."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProcessingGuarantee(StrEnum):
    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    """Everything the shell reads from the environment; tests construct it directly."""

    model_config = SettingsConfigDict(env_prefix="SLA_", frozen=True, extra="forbid")

    app_id: str = "sla-processor"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    topic_tickets: str = "tickets.events"
    topic_maintenance: str = "maintenance.events"
    topic_escalations: str = "sla.escalations"
    topic_updates_due: str = "sla.updates-due"
    topic_breaches: str = "sla.breaches"
    topic_notices: str = "maintenance.notices"
    # Outputs of the optional policy rules (warnings, acknowledgements, corrections, surveys).
    topic_warnings: str = "sla.warnings"
    topic_acknowledgements: str = "sla.acknowledgements"
    topic_retractions: str = "sla.retractions"
    topic_surveys: str = "tickets.surveys"
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    topic_replication_factor: int = Field(default=1, ge=1, le=16)

    policy_file: Path | None = None
    # Entries kept per ticket for GET /tickets/{id}/timeline (the oldest after the opening are
    # dropped beyond it); 0 keeps none and writes no timeline table.
    timeline_entries: int = Field(default=200, ge=0, le=100_000)
    store: Literal["rocksdb://", "memory://"] = "rocksdb://"
    data_dir: Path = Path("var/sla-processor")
    processing_guarantee: ProcessingGuarantee = ProcessingGuarantee.AT_LEAST_ONCE

    # A crashed worker keeps its partitions, and their deadlines, until its session times out;
    # the broker refuses less than its group.min.session.timeout.ms (6 s by default).
    session_timeout_seconds: float = Field(default=10.0, ge=6.0, le=1800.0)
    # Static group membership (KIP-345): a worker restarted under the same instance id within
    # the session timeout takes its partitions back at once, without a rebalance. Each worker
    # needs its own stable id (a StatefulSet pod name); one that stops for good holds its
    # partitions until the session times out. See `static_member_id`.
    group_instance_id: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    # How long the producer waits to fill a batch: throughput for latency (outputs, timers).
    producer_linger_seconds: float = Field(default=0.0, ge=0.0, le=1.0)
    commit_interval_seconds: float = Field(default=2.8, gt=0.0, le=60.0)
    # How often the clients refresh the topics' metadata: how soon a worker sees an input topic
    # expanded under it, and stops (the clients' default is 5 minutes).
    metadata_max_age_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    # The host other workers reach this one's web port at (queries are forwarded to a ticket's
    # owner). Default: web_host, unless that is a wildcard (0.0.0.0, ::): then the address this
    # host reaches the first bootstrap server from (topology.advertised_host).
    web_advertised_host: str | None = Field(default=None, min_length=1, max_length=253)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # The HTTP ingest (`sla-processor ingest`, docs/ingest.md): CloudEvents over HTTP and the
    # help desks' webhooks, published to the input topics. Off the loopback interface it needs
    # bearer tokens (a file of them, one a line) or client certificates (mTLS).
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8070, ge=1, le=65535)
    ingest_token_file: Path | None = None
    # Webhook signing secrets, "<source> <secret>" a line: a webhook of that source is taken when
    # signed with it (Jira's and Zendesk's schemes), bearer token or not.
    ingest_webhook_secrets_file: Path | None = None
    ingest_tls_certfile: Path | None = None
    ingest_tls_keyfile: Path | None = None
    ingest_tls_client_cafile: Path | None = None
    # Mapping files (<source>.toml) that replace or add to the built-in zendesk, jira, servicenow.
    ingest_mappings_dir: Path | None = None
    ingest_max_request_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    ingest_max_batch_events: int = Field(default=500, ge=1, le=10_000)
    # How long a request waits for Kafka's acknowledgement before it is answered 503.
    ingest_send_timeout_seconds: float = Field(default=10.0, gt=0.0, le=120.0)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_are_host_port(cls, value: str) -> str:
        for server in value.removeprefix("kafka://").split(","):
            host, sep, port = server.strip().rpartition(":")
            if not (sep and host and port.isdigit()):
                raise ValueError(f"{server!r} is not host:port")
        return value

    @property
    def static_member_id(self) -> str | None:
        """The static member id the broker sees: the configured id and the worker's web address.

        Faust's assignment records each member's web address and refuses (an assertion that
        stops the consumer's coordinator for good) one given back with another: a worker
        restarted on another address is therefore another member, which rejoins as a dynamic
        one would.
        """
        if self.group_instance_id is None:
            return None
        host = self.web_advertised_host or self.web_host
        address = re.sub(r"[^A-Za-z0-9._-]", "_", f"{host}-{self.web_port}")
        return f"{self.group_instance_id}-{address}"

    @model_validator(mode="after")
    def _static_member_id_fits(self) -> Settings:
        member = self.static_member_id
        if member is not None and len(member) > 249:
            raise ValueError(
                f"group_instance_id with the web address makes a {len(member)}-character member "
                "id; Kafka takes 249 at most"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "ingest_token_file",
        "ingest_webhook_secrets_file",
        "ingest_tls_certfile", "ingest_tls_keyfile", "ingest_tls_client_cafile",
    )  # fmt: skip
    @classmethod
    def _file_is_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "SASL protocols need SLA_KAFKA_SASL_MECHANISM, SLA_KAFKA_SASL_USERNAME "
                "and SLA_KAFKA_SASL_PASSWORD"
            )
        return self

    @field_validator("ingest_mappings_dir")
    @classmethod
    def _is_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no such directory: {value}")
        return value

    @model_validator(mode="after")
    def _ingest_is_guarded(self) -> Settings:
        if (self.ingest_tls_certfile is None) != (self.ingest_tls_keyfile is None):
            raise ValueError("SLA_INGEST_TLS_CERTFILE and SLA_INGEST_TLS_KEYFILE go together")
        if self.ingest_tls_client_cafile is not None and self.ingest_tls_certfile is None:
            raise ValueError("SLA_INGEST_TLS_CLIENT_CAFILE (mTLS) needs SLA_INGEST_TLS_CERTFILE")
        guarded = self.ingest_token_file is not None or self.ingest_tls_client_cafile is not None
        if not guarded and not _loopback(self.ingest_host):
            raise ValueError(
                f"SLA_INGEST_HOST {self.ingest_host} is reachable from the network: set "
                "SLA_INGEST_TOKEN_FILE (bearer tokens) or SLA_INGEST_TLS_CLIENT_CAFILE (mTLS)"
            )
        return self


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# The test suite's own variables share the prefix (docs/kafka.md); they configure no worker.
_NOT_SETTINGS = "SLA_TEST_"


class ConfigError(ValueError):
    """The environment does not configure a worker; the message names what is wrong, never a
    value (it may be a password)."""


def from_environment(environ: Mapping[str, str]) -> Settings:
    """The settings `environ` gives (it must be the process environment pydantic reads), or
    ConfigError naming each unknown variable or invalid setting."""
    unknown = unknown_variables(environ)
    if unknown:
        raise ConfigError(f"unknown configuration variable: {', '.join(unknown)}")
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration:\n{describe(exc).rstrip()}") from None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`SLA_*` variables that name no setting: pydantic-settings ignores them, a typo must not."""
    known = {f"SLA_{name.upper()}" for name in Settings.model_fields}
    return sorted(
        name
        for name in environ
        if name.startswith("SLA_") and name not in known and not name.startswith(_NOT_SETTINGS)
    )


def describe(exc: ValidationError) -> str:
    """One line per error, naming the variable; never the input (it may be a password)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = f"SLA_{str(error['loc'][0]).upper()}" if error["loc"] else "settings"
        lines.append(f"  {where}: {error['msg']}\n")
    return "".join(lines)


def described_settings() -> str:
    """One line per setting (its variable and default), for `worker --help`."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else (default.value if isinstance(default, StrEnum)
                                                  else str(default))  # fmt: skip
        lines.append(f"  SLA_{name.upper():<34} {shown}")
    return "\n".join(lines)
