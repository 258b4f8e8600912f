"""Typed settings with one precedence rule: flags > environment > config file > defaults.

The seed's names hold: KAFKA_BROKERS / kafka.brokers, KAFKA_TOPIC / kafka.topic, KAFKA_RETRY_MAX,
KAFKA_REQUIRED_ACKS. Any librdkafka property can be passed through ``kafka.properties``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

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
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\s:/,]+):(\d{1,5})$")


class SettingsError(Exception):
    """A setting is invalid; the message is one line meant for a person."""


def state_home() -> Path:
    """Where coffee-orders keeps local state by default: outside the work tree, per user."""
    state = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(state).expanduser() / "coffee-orders"


def parse_host_port(value: str) -> tuple[str, int]:
    """Split "host:port" and check the port range."""
    match = _HOST_PORT.match(value.strip())
    if not match or not 0 <= int(match.group(2)) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return match.group(1), int(match.group(2))


class KafkaSettings(BaseModel):
    """How to reach Kafka and which topics to use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brokers: tuple[str, ...] = ("localhost:9092",)
    topic: str = "coffee_orders"
    retry_max: int = Field(default=5, ge=0, le=2_147_483_647)
    required_acks: Literal["all", "1", "0"] = "all"
    delivery_timeout_ms: int = Field(default=10_000, ge=100, le=900_000)
    group_id: str = Field(default="coffee-orders", min_length=1)
    dead_letter_topic: str = ""
    # Security: passed to librdkafka as security.protocol, sasl.* and ssl.* (see kafka_config).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: str | None = None
    ssl_ca_location: str | None = None
    # mTLS to Kafka: this client's certificate and key (PEM files); the key's password if any.
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)

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

    @field_validator("topic", "dead_letter_topic")
    @classmethod
    def _check_topic(cls, value: str, info: Any) -> str:
        if value == "" and info.field_name == "dead_letter_topic":
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


class TlsSettings(BaseModel):
    """In-process TLS for the gRPC server: a certificate and key; a client CA turns on mTLS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None

    @model_validator(mode="after")
    def _complete_and_readable(self) -> TlsSettings:
        if bool(self.cert) != bool(self.key):
            raise ValueError("tls cert and key go together: give both or neither")
        if self.client_ca and not self.cert:
            raise ValueError("a tls client CA (mTLS) needs a server cert and key too")
        for name in ("cert", "key", "client_ca"):
            path = getattr(self, name)
            if path:
                try:
                    Path(path).read_bytes()
                except OSError as exc:
                    raise ValueError(f"cannot read tls {name} {path}: {exc.strerror}") from None
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


class ServiceSettings(BaseModel):
    """What both services share: where to listen, how to log, how long to drain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    listen: str = "0.0.0.0:50051"
    # Prometheus /metrics on HOST:PORT; off when not set.
    metrics_listen: str | None = None
    grace_period_s: float = Field(default=10.0, gt=0, le=600)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _check_listen(cls, value: str | None) -> str | None:
        if value:
            parse_host_port(value)
        return value or None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


# Environment variable -> dotted setting path, for every section.
COMMON_ENV: dict[str, str] = {
    "KAFKA_BROKERS": "kafka.brokers",
    "KAFKA_TOPIC": "kafka.topic",
    "KAFKA_RETRY_MAX": "kafka.retry_max",
    "KAFKA_REQUIRED_ACKS": "kafka.required_acks",
    "KAFKA_DELIVERY_TIMEOUT_MS": "kafka.delivery_timeout_ms",
    "KAFKA_GROUP_ID": "kafka.group_id",
    "KAFKA_DLQ_TOPIC": "kafka.dead_letter_topic",
    "KAFKA_SECURITY_PROTOCOL": "kafka.security_protocol",
    "KAFKA_SASL_MECHANISM": "kafka.sasl_mechanism",
    "KAFKA_SASL_USERNAME": "kafka.sasl_username",
    "KAFKA_SASL_PASSWORD": "kafka.sasl_password",
    "KAFKA_SASL_PASSWORD_FILE": "kafka.sasl_password_file",
    "KAFKA_SSL_CA_LOCATION": "kafka.ssl_ca_location",
    "KAFKA_SSL_CERTIFICATE_LOCATION": "kafka.ssl_certificate_location",
    "KAFKA_SSL_KEY_LOCATION": "kafka.ssl_key_location",
    "KAFKA_SSL_KEY_PASSWORD": "kafka.ssl_key_password",
    "KAFKA_SSL_KEY_PASSWORD_FILE": "kafka.ssl_key_password_file",
    "COFFEE_TLS_CERT": "tls.cert",
    "COFFEE_TLS_KEY": "tls.key",
    "COFFEE_TLS_CLIENT_CA": "tls.client_ca",
    "COFFEE_METRICS_LISTEN": "metrics_listen",
    "COFFEE_LOG_FORMAT": "log_format",
    "COFFEE_LOG_LEVEL": "log_level",
    "COFFEE_GRACE_PERIOD": "grace_period_s",
}
CONFIG_ENV = "COFFEE_CONFIG"
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML or TOML config file into a dict."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = tomllib.loads(text) if file.suffix == ".toml" else yaml.safe_load(text)
    except OSError as exc:
        raise SettingsError(f"cannot read config file {file}: {exc.strerror}") from exc
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(
            f"config file {file} is not valid: {' '.join(str(exc).split())}"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {file} must hold a mapping at the top level")
    return data


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


def load_settings(
    model: type[SettingsT],
    section: str,
    *,
    flags: Mapping[str, Any] | None = None,
    section_env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: str | None = None,
) -> SettingsT:
    """Merge the layers and validate them, raising SettingsError with one clear line.

    ``flags`` maps dotted setting paths to values given on the command line (None = not given).
    ``section`` names this service's block in the config file (``producer`` or ``consumer``).
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path = config_path or environ.get(CONFIG_ENV) or None
    if config_path:
        file_data = read_config_file(config_path)
        unknown = set(file_data) - {"kafka", "producer", "consumer", "tls"}
        if unknown:
            raise SettingsError(
                f"config file {config_path}: unknown section(s) {sorted(unknown)}; "
                "expected kafka, producer, consumer"
            )
        for key, value in (file_data.get(section) or {}).items():
            data[key] = value
            sources[key] = f"{config_path}: {section}.{key}"
        if isinstance(file_data.get("tls"), dict):
            data["tls"] = dict(file_data["tls"])
            for key in file_data["tls"]:
                sources[f"tls.{key}"] = f"{config_path}: tls.{key}"
        if "kafka" in file_data:
            if not isinstance(file_data["kafka"], dict):
                raise SettingsError(f"config file {config_path}: kafka must be a mapping")
            data["kafka"] = dict(file_data["kafka"])
            for key in file_data["kafka"]:
                sources[f"kafka.{key}"] = f"{config_path}: kafka.{key}"
    for name, dotted in {**COMMON_ENV, **(section_env or {})}.items():
        if name in environ:
            _set_path(data, dotted, environ[name])
            sources[dotted] = f"environment variable {name}"
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set_path(data, dotted, value)
            sources[dotted] = "command line"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        dotted = ".".join(str(part) for part in first["loc"])
        inner = [source for key, source in sources.items() if key.startswith(f"{dotted}.")]
        origin = (
            sources.get(dotted)
            or sources.get(dotted.rsplit(".", 1)[0])
            or (inner[-1] if inner else "defaults")
        )
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown setting"
        raise SettingsError(f"invalid setting {dotted} (from {origin}): {message}") from None
