"""How a setting is declared: a pydantic field that carries its environment variable, its flag
(if any) and a line of help, so that loading, error messages and ``--help`` read one declaration.

pydantic-settings reads an environment variable into a nested model only by a delimited name
(``KAFKA__BROKERS``); the names here are flat and fixed (``KAFKA_BROKERS`` -> ``kafka.brokers``),
so each field declares its own and ``declared_settings`` lists them with their dotted paths.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^\s:/,]+):(\d{1,5})$")


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
