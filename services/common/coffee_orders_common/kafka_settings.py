"""Kafka settings: how to reach the brokers, which topics to use, and security.

The original format's names hold (docs/kafka-integration.md): KAFKA_BROKERS / kafka.brokers,
KAFKA_TOPIC / kafka.topic, KAFKA_RETRY_MAX, KAFKA_REQUIRED_ACKS. Any librdkafka property can be
passed through ``kafka.properties`` (config file only).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .setting_fields import parse_host_port, setting

ACKS_ALIASES = {
    "all": "all",
    "-1": "all",
    "waitforall": "all",
    "1": "1",
    "local": "1",
    "waitforlocal": "1",
    "0": "0",
    "none": "0",
    "noresponse": "0",
}
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class KafkaSettings(BaseModel):
    """How to reach Kafka and which topics to use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokers: tuple[str, ...] = setting(
        ("localhost:9092",),
        env="KAFKA_BROKERS",
        flag="--brokers",
        help="Kafka bootstrap servers, comma-separated or a JSON array",
    )
    topic: str = setting(
        "coffee_orders", env="KAFKA_TOPIC", flag="--topic", help="the orders topic"
    )
    retry_max: int = setting(
        5, env="KAFKA_RETRY_MAX", help="producer retries per message", ge=0, le=2_147_483_647
    )
    required_acks: Literal["all", "1", "0"] = setting(
        "all", env="KAFKA_REQUIRED_ACKS", help="acks: all (-1), local (1) or none (0)"
    )
    delivery_timeout_ms: int = setting(
        10_000,
        env="KAFKA_DELIVERY_TIMEOUT_MS",
        help="how long Kafka may take to confirm an order",
        ge=100,
        le=900_000,
    )
    group_id: str = setting(
        "coffee-orders",
        env="KAFKA_GROUP_ID",
        flag="--group",
        help="the consumer group",
        min_length=1,
    )
    dead_letter_topic: str = setting(
        "", env="KAFKA_DLQ_TOPIC", help="dead-letter topic; unset: the topic + .dlq"
    )
    order_state_topic: str = setting(
        "",
        env="KAFKA_ORDER_STATE_TOPIC",
        help="compacted topic of what the consumer group did with each order; unset: the "
        "topic + .order-state",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = setting(
        None, env="KAFKA_SECURITY_PROTOCOL", help="librdkafka security.protocol"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = setting(
        None, env="KAFKA_SASL_MECHANISM", help="librdkafka sasl.mechanism"
    )
    sasl_username: str | None = setting(None, env="KAFKA_SASL_USERNAME", help="SASL user")
    sasl_password: SecretStr | None = setting(
        None, env="KAFKA_SASL_PASSWORD", help="SASL password (prefer the file)"
    )
    sasl_password_file: str | None = setting(
        None, env="KAFKA_SASL_PASSWORD_FILE", help="file holding the SASL password"
    )
    ssl_ca_location: str | None = setting(
        None, env="KAFKA_SSL_CA_LOCATION", help="CA (PEM) the brokers' certificates chain to"
    )
    # mTLS to Kafka: this client's certificate and key (PEM files); the key's password if any.
    ssl_certificate_location: str | None = setting(
        None, env="KAFKA_SSL_CERTIFICATE_LOCATION", help="client certificate (PEM) for mTLS"
    )
    ssl_key_location: str | None = setting(
        None, env="KAFKA_SSL_KEY_LOCATION", help="private key (PEM) of the client certificate"
    )
    ssl_key_password: SecretStr | None = setting(
        None, env="KAFKA_SSL_KEY_PASSWORD", help="password of that key (prefer the file)"
    )
    ssl_key_password_file: str | None = setting(
        None, env="KAFKA_SSL_KEY_PASSWORD_FILE", help="file holding the key's password"
    )
    properties: dict[str, str] = Field(
        default_factory=dict,
        description="any librdkafka property, by its dotted name (config file only)",
    )

    @field_validator("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")
    @classmethod
    def _readable(cls, value: str | None, info: Any) -> str | None:
        """A file we can read; the CA may also be a directory of certificates or librdkafka's
        "probe" (the system's usual CA bundle locations)."""
        if not value:
            return None
        if info.field_name == "ssl_ca_location" and (value == "probe" or Path(value).is_dir()):
            return value
        try:
            Path(value).read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from None
        return value

    @model_validator(mode="after")
    def _read_secret_files(self) -> KafkaSettings:
        """A password given as a file (a mounted secret) is read once, here."""
        for secret, file, what in (
            ("sasl_password", self.sasl_password_file, "SASL password"),
            ("ssl_key_password", self.ssl_key_password_file, "TLS key password"),
        ):
            if file and getattr(self, secret) is None:
                try:
                    value = Path(file).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(f"cannot read the {what} file: {exc.strerror}") from None
                object.__setattr__(self, secret, SecretStr(value))
        return self

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        """SASL and TLS settings that the chosen security protocol would silently ignore, or
        that miss their other half, stop the program at start."""
        protocol = self.security_protocol or self.properties.get("security.protocol", "")
        protocol = protocol.upper() or "PLAINTEXT"
        if self.sasl_mechanism and not (self.sasl_username and self.sasl_password):
            raise ValueError("sasl_mechanism needs sasl_username and a password")
        if protocol.startswith("SASL_"):
            if not (self.sasl_mechanism or "sasl.mechanism" in self.properties):
                raise ValueError(
                    f"security_protocol {protocol} needs sasl_mechanism "
                    "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                )
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password:
            raise ValueError(
                f"SASL settings need security_protocol SASL_SSL or SASL_PLAINTEXT, not {protocol}"
            )
        tls = (
            self.ssl_ca_location,
            self.ssl_certificate_location,
            self.ssl_key_location,
            self.ssl_key_password,
        )
        if any(tls) and not protocol.endswith("SSL"):
            raise ValueError(f"TLS settings need security_protocol SSL or SASL_SSL, not {protocol}")
        if bool(self.ssl_certificate_location) != bool(self.ssl_key_location):
            raise ValueError(
                "ssl_certificate_location and ssl_key_location go together: give both or neither"
            )
        if self.ssl_key_password and not self.ssl_key_location:
            raise ValueError("ssl_key_password needs ssl_key_location")
        return self

    @field_validator("brokers", mode="before")
    @classmethod
    def _split_brokers(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            brokers = tuple(str(b).strip() for b in value if str(b).strip())
            if not brokers:
                raise ValueError("at least one broker is required")
            for broker in brokers:
                parse_host_port(broker)
            return brokers
        return value

    @field_validator("required_acks", mode="before")
    @classmethod
    def _normalise_acks(cls, value: Any) -> Any:
        key = str(value).strip().lower()
        if key not in ACKS_ALIASES:
            raise ValueError(f"expected one of all, 1, 0, -1, none, local; got {value!r}")
        return ACKS_ALIASES[key]

    @field_validator("topic", "dead_letter_topic", "order_state_topic")
    @classmethod
    def _check_topic(cls, value: str, info: Any) -> str:
        if value == "" and info.field_name != "topic":
            return value
        if not _TOPIC_NAME.match(value) or value in {".", ".."}:
            raise ValueError(f"not a legal Kafka topic name: {value!r}")
        return value

    @field_validator("properties", mode="before")
    @classmethod
    def _stringify_properties(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                str(k): (str(v).lower() if isinstance(v, bool) else str(v))
                for k, v in value.items()
            }
        return value

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(self.brokers)

    @property
    def dead_letter_topic_name(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"

    @property
    def order_state_topic_name(self) -> str:
        return self.order_state_topic or f"{self.topic}.order-state"
