"""Typed settings from four layers: command-line flags > environment > config file > defaults.

The models are pydantic-settings models; each setting declares its environment variable (and its
flag, where it has one) next to its type and default (``setting_fields``), so the loader, the
error messages and ``--help`` all read the same declaration. The Kafka section is in
``kafka_settings``.

Constructing a model directly (tests, in-process services) validates the values given and the
defaults; ``load_settings`` adds the environment and the config file.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
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
