"""Typed settings from four layers: command-line flags > environment > config file > defaults.

The models are pydantic-settings models; each setting declares its environment variable (and its
flag, where it has one) next to its type and default, so the loader, the error messages and
``--help`` all read the same declaration. The seed's names hold: KAFKA_BROKERS / kafka.brokers,
KAFKA_TOPIC / kafka.topic, KAFKA_RETRY_MAX, KAFKA_REQUIRED_ACKS. Any librdkafka property can be
passed through ``kafka.properties``.

Constructing a model directly (tests, in-process services) validates the values given and the
defaults; ``load_settings`` adds the environment and the config file.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
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
CONFIG_ENV = "COFFEE_CONFIG"
CONFIG_SECTIONS = ("kafka", "tls", "producer", "consumer")


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


def setting(
    default: Any = None, *, env: str, help: str, flag: str | None = None, **field: Any
) -> Any:
    """A settings field with its environment variable, its flag (if any) and a line of help."""
    declared = {"description": help, "json_schema_extra": {"env": env, "flag": flag}, **field}
    if "default_factory" in field:
        return Field(**declared)
    return Field(default, **declared)


@dataclass(frozen=True)
class Declared:
    """One setting as declared: where it sits (``kafka.topic``), its env name, flag and help."""

    path: str
    env: str
    flag: str | None
    help: str
    field: FieldInfo

    @property
    def default_text(self) -> str:
        if self.field.default_factory is not None:
            value = self.field.default_factory()  # type: ignore[call-arg]
        else:
            value = self.field.default
        if value is None or value == "" or value == {}:
            return "unset"
        if isinstance(value, tuple):
            return ",".join(str(part) for part in value)
        return str(value)


def declared_settings(model: type[BaseModel], prefix: str = "") -> Iterator[Declared]:
    """Every setting of ``model`` and its nested sections, in declaration order."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from declared_settings(annotation, f"{prefix}{name}.")
            continue
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("env"):
            yield Declared(
                f"{prefix}{name}",
                str(extra["env"]),
                str(extra["flag"]) if extra.get("flag") else None,
                field.description or "",
                field,
            )


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


class TlsSettings(BaseModel):
    """In-process TLS for the gRPC server: a certificate and key; a client CA turns on mTLS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert: str | None = setting(
        None, env="COFFEE_TLS_CERT", flag="--tls-cert", help="server certificate (PEM): serve TLS"
    )
    key: str | None = setting(
        None, env="COFFEE_TLS_KEY", flag="--tls-key", help="private key of the certificate (PEM)"
    )
    client_ca: str | None = setting(
        None,
        env="COFFEE_TLS_CLIENT_CA",
        flag="--tls-client-ca",
        help="CA (PEM) client certificates must chain to: mTLS",
    )

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


class ServerLimits(BaseModel):
    """How many connections and calls callers may hold open on a service, and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_connections: int = setting(
        2_000,
        env="COFFEE_MAX_CONNECTIONS",
        help="connections on the gRPC port; more are closed as soon as they are accepted",
        ge=1,
        le=1_000_000,
    )
    max_calls: int = setting(
        10_000,
        env="COFFEE_MAX_CALLS",
        help="calls (RPCs and streams) at once on the gRPC port; more get RESOURCE_EXHAUSTED",
        ge=1,
        le=1_000_000,
    )
    idle_timeout_s: float = setting(
        120.0,
        env="COFFEE_IDLE_TIMEOUT",
        help="seconds a connection may stay without a call (gRPC) or request (/metrics)",
        gt=0,
        le=86_400,
    )
    handshake_timeout_s: float = setting(
        20.0,
        env="COFFEE_HANDSHAKE_TIMEOUT",
        help="seconds a new gRPC connection has to finish its TLS and HTTP/2 handshake",
        gt=0,
        le=600,
    )
    max_age_s: float = setting(
        3_600.0,
        env="COFFEE_MAX_CONNECTION_AGE",
        help="seconds after which a gRPC connection is asked to go (GOAWAY)",
        gt=0,
        le=31_536_000,
    )
    max_age_grace_s: float = setting(
        300.0,
        env="COFFEE_MAX_CONNECTION_AGE_GRACE",
        help="seconds the calls of such a connection get to finish before it is closed",
        ge=0,
        le=86_400,
    )
    keepalive_s: float = setting(
        60.0,
        env="COFFEE_KEEPALIVE",
        help="seconds of quiet after which the server pings a connection (20 s to answer)",
        ge=10,
        le=86_400,
    )
    max_metrics_connections: int = setting(
        32,
        env="COFFEE_METRICS_MAX_CONNECTIONS",
        help="connections on the /metrics port; more get 503",
        ge=1,
        le=100_000,
    )


class OrderStateSettings(BaseModel):
    """How much of the order-state topic each instance keeps in memory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = setting(
        True,
        env="COFFEE_ORDER_STATE",
        help="record each order's processing in the order-state topic (transactions, the "
        "duplicate check across the group, order tracking); false: offsets are stored and "
        "auto-committed, with no duplicate check and no tracking",
    )
    window_s: float = setting(
        3600.0,
        env="COFFEE_ORDER_STATE_WINDOW",
        help="seconds an order's state is kept: a copy of an order processed within it is "
        "skipped, and GetOrder knows it (also the order-state topic's retention)",
        ge=60,
        le=30 * 86400,
    )
    max_orders: int = setting(
        1_000_000,
        env="COFFEE_ORDER_STATE_MAX_ORDERS",
        help="orders kept in memory at most (about 200 bytes each); beyond it the oldest go "
        "before their window ends",
        ge=1000,
        le=100_000_000,
    )


class ServiceSettings(BaseSettings):
    """What both services share: where to listen, how to log, how long to drain."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)
    config_section: ClassVar[str] = ""  # this service's block in the config file

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    listen: str = "0.0.0.0:50051"  # each service declares its own default and env name
    metrics_listen: str | None = setting(
        None,
        env="COFFEE_METRICS_LISTEN",
        flag="--metrics-listen",
        help="HOST:PORT for Prometheus /metrics",
    )
    grace_period_s: float = setting(
        10.0,
        env="COFFEE_GRACE_PERIOD",
        help="seconds in-flight work may take to finish on SIGTERM",
        gt=0,
        le=600,
    )
    log_format: Literal["text", "json"] = setting(
        "text", env="COFFEE_LOG_FORMAT", flag="--log-format", help="log lines as text or JSON"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        "INFO", env="COFFEE_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR"
    )
    limits: ServerLimits = Field(default_factory=ServerLimits)
    order_state: OrderStateSettings = Field(default_factory=OrderStateSettings)
    worker_stall_timeout_s: float = setting(
        60.0,
        env="COFFEE_WORKER_STALL_TIMEOUT",
        help="seconds a worker (consume loop, delivery-report poller, Kafka watch) or the event "
        "loop may stay silent before the service fails (exit 70); at least 10",
        ge=10,
        le=3600,
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values given (the flags) first; then, inside ``load_settings``, env and config file."""
        layers = _LAYERS.get()
        if layers is None:
            return (init_settings,)
        return (init_settings, layers.environment, layers.config_file)

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


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value


class DeclaredEnvironment(PydanticBaseSettingsSource):
    """The environment variables the settings declare (``KAFKA_BROKERS`` -> ``kafka.brokers``)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        super().__init__(settings_cls)
        self.origins: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        for declared in declared_settings(settings_cls):
            if declared.env in environ:
                _set_path(self._values, declared.path, environ[declared.env])
                self.origins[declared.path] = f"environment variable {declared.env}"

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._values


class ConfigFile(PydanticBaseSettingsSource):
    """A YAML or TOML file: sections ``kafka`` and ``tls`` and this service's own block."""

    def __init__(self, settings_cls: type[ServiceSettings], path: str | None):
        super().__init__(settings_cls)
        self.origins: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        if path:
            self._load(path, settings_cls.config_section)

    def _load(self, path: str, section: str) -> None:
        file = Path(path)
        if not file.is_file():
            raise SettingsError(f"cannot read config file {file}: no such file")
        try:
            reader: PydanticBaseSettingsSource = (
                TomlConfigSettingsSource(self.settings_cls, toml_file=file)
                if file.suffix == ".toml"
                else YamlConfigSettingsSource(self.settings_cls, yaml_file=file)
            )
            data = reader()
        except Exception as exc:  # the YAML/TOML parsers' own errors, one line
            raise SettingsError(
                f"config file {file} is not valid: {' '.join(str(exc).split())}"
            ) from None
        unknown = sorted(set(data) - set(CONFIG_SECTIONS))
        if unknown:
            raise SettingsError(
                f"config file {file}: unknown section(s) {unknown}; "
                f"expected {', '.join(CONFIG_SECTIONS)}"
            )
        for name in CONFIG_SECTIONS:
            block = data.get(name)
            if block is not None and not isinstance(block, dict):
                raise SettingsError(f"config file {file}: {name} must be a mapping")
        for name in ("kafka", "tls"):
            for key, value in (data.get(name) or {}).items():
                _set_path(self._values, f"{name}.{key}", value)
                self.origins[f"{name}.{key}"] = f"{file}: {name}.{key}"
        for key, value in (data.get(section) or {}).items():
            self._values[key] = value
            self.origins[key] = f"{file}: {section}.{key}"

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._values


@dataclass(frozen=True)
class _Layers:
    environment: DeclaredEnvironment
    config_file: ConfigFile


_LAYERS: contextvars.ContextVar[_Layers | None] = contextvars.ContextVar(
    "coffee_orders_settings_layers", default=None
)


def load_settings(
    model: type[SettingsT],
    *,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: str | None = None,
) -> SettingsT:
    """Merge flags > environment > config file > defaults; SettingsError with one clear line.

    ``flags`` maps dotted setting paths to the values given on the command line (None: not
    given). The config file is ``config_path``, else $COFFEE_CONFIG, else none.
    """
    environ = os.environ if environ is None else environ
    given: dict[str, Any] = {}
    for dotted, value in (flags or {}).items():
        if value is not None:
            _set_path(given, dotted, value)
    layers = _Layers(
        DeclaredEnvironment(model, environ),
        ConfigFile(model, config_path or environ.get(CONFIG_ENV) or None),
    )
    token = _LAYERS.set(layers)
    try:
        return model(**given)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, _merged_origins(given, layers))) from None
    finally:
        _LAYERS.reset(token)


def _merged_origins(given: Mapping[str, Any], layers: _Layers) -> dict[str, str]:
    """Where each dotted setting came from, the winning layer last."""
    flags = {path: "command line" for path in _dotted_paths(given)}
    return {**layers.config_file.origins, **layers.environment.origins, **flags}


def _dotted_paths(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        if isinstance(value, Mapping):
            yield from _dotted_paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _one_line(exc: ValidationError, origins: Mapping[str, str]) -> str:
    first = exc.errors()[0]
    dotted = ".".join(str(part) for part in first["loc"])
    inner = [source for key, source in origins.items() if key.startswith(f"{dotted}.")]
    origin = (
        origins.get(dotted)
        or origins.get(dotted.rsplit(".", 1)[0])
        or (inner[-1] if inner else "defaults")
    )
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown setting"
    return f"invalid setting {dotted} (from {origin}): {message}"
