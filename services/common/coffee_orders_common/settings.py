"""Typed settings from four layers: command-line flags > environment > config file > defaults.

The models are pydantic-settings models; each setting declares its environment variable (and its
flag, where it has one) next to its type and default (``setting_fields``), so the loader, the
error messages and ``--help`` all read the same declaration. The Kafka section is in
``kafka_settings``.

Constructing a model directly (tests, in-process services) validates the values given and the
defaults; ``load_settings`` adds the environment (the names the fields declare) and the config
file (read by pydantic-settings' YAML or TOML source), and names the source of a bad value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from .kafka_settings import KafkaSettings
from .server_limits import ServerLimits
from .setting_fields import declared_settings, parse_host_port, setting

CONFIG_ENV = "COFFEE_CONFIG"
CONFIG_SECTIONS = ("kafka", "tls", "producer", "consumer")


class SettingsError(Exception):
    """A setting is invalid; the message is one line meant for a person."""


def state_home() -> Path:
    """Where coffee-orders keeps local state by default: outside the work tree, per user."""
    state = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(state).expanduser() / "coffee-orders"


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
        """Only the values given. ``load_settings`` layers the environment and the config file
        before: pydantic-settings builds these sources per class, with no way to hand them the
        call's environ or ``--config`` path, and reads flat env names into top-level fields only
        (``KAFKA_BROKERS`` would have to be ``KAFKA__BROKERS``)."""
        return (init_settings,)

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
# One layer of values: nested as the model is, and where each (dotted) key came from.
Layer = tuple[dict[str, Any], dict[str, str]]


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
    given = {path: value for path, value in (flags or {}).items() if value is not None}
    layers: list[Layer] = [
        _nested(given, dict.fromkeys(given, "command line")),
        _environment(model, environ),
    ]
    path = config_path or environ.get(CONFIG_ENV)
    if path:
        layers.append(_config_file(model, Path(path)))
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}  # where each dotted key came from, the winning layer last
    for layer_values, layer_origins in reversed(layers):
        values = _merge(values, layer_values)
        origins.update(layer_origins)
    try:
        return model(**values)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, origins)) from None


def _environment(model: type[ServiceSettings], environ: Mapping[str, str]) -> Layer:
    """The environment variables the settings declare (``KAFKA_BROKERS`` -> ``kafka.brokers``)."""
    names = {d.path: d.env for d in declared_settings(model) if d.env in environ}
    origins = {path: f"environment variable {env}" for path, env in names.items()}
    return _nested({path: environ[env] for path, env in names.items()}, origins)


def _config_file(model: type[ServiceSettings], file: Path) -> Layer:
    """A YAML or TOML file, read by pydantic-settings' source for it: sections ``kafka`` and
    ``tls`` and this service's own block (``producer`` or ``consumer``)."""
    if not file.is_file():
        raise SettingsError(f"cannot read config file {file}: no such file")
    try:
        source = (
            TomlConfigSettingsSource(model, toml_file=file)
            if file.suffix == ".toml"
            else YamlConfigSettingsSource(model, yaml_file=file)
        )
        data = source()
    except Exception as exc:  # the YAML/TOML parsers' own errors, one line
        reason = " ".join(str(exc).split())
        raise SettingsError(f"config file {file} is not valid: {reason}") from None
    unknown = sorted(set(data) - set(CONFIG_SECTIONS))
    if unknown:
        expected = ", ".join(CONFIG_SECTIONS)
        raise SettingsError(
            f"config file {file}: unknown section(s) {unknown}; expected {expected}"
        )
    for name in CONFIG_SECTIONS:
        if data.get(name) is not None and not isinstance(data[name], dict):
            raise SettingsError(f"config file {file}: {name} must be a mapping")
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in ("kafka", "tls"):
        for key, value in (data.get(name) or {}).items():
            values.setdefault(name, {})[key] = value
            origins[f"{name}.{key}"] = f"{file}: {name}.{key}"
    for key, value in (data.get(model.config_section) or {}).items():
        values[key] = value
        origins[key] = f"{file}: {model.config_section}.{key}"
    return values, origins


def _nested(dotted: Mapping[str, Any], origins: dict[str, str]) -> Layer:
    values: dict[str, Any] = {}
    for path, value in dotted.items():
        *parents, leaf = path.split(".")
        target = values
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return values, origins


def _merge(lower: Mapping[str, Any], higher: Mapping[str, Any]) -> dict[str, Any]:
    """``higher`` over ``lower``, section by section (a flag beats one key of a file's section)."""
    merged = dict(lower)
    for key, value in higher.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            value = _merge(below, value)
        merged[key] = value
    return merged


def _one_line(exc: ValidationError, origins: Mapping[str, str]) -> str:
    """The first error, naming the setting and where its value came from."""
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
