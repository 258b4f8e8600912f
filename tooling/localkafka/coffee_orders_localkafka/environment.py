"""Where a local broker goes: ``COFFEE_KAFKA_PORT`` moves ``kafka up`` and ``dev`` (so ``make
run``) off 9092."""

from __future__ import annotations

import os

KAFKA_PORT_ENV = "COFFEE_KAFKA_PORT"
DEFAULT_KAFKA_PORT = 9092


class BadEnvironment(ValueError):
    """An environment variable holds something the command cannot use (one line for a person)."""


def kafka_port(flag: int | None) -> int:
    """``--port`` when given, else ``$COFFEE_KAFKA_PORT``, else 9092."""
    if flag is not None:
        return flag
    raw = os.environ.get(KAFKA_PORT_ENV)
    if not raw:
        return DEFAULT_KAFKA_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65535:
        raise BadEnvironment(f"{KAFKA_PORT_ENV}={raw!r} is not a port number")
    return int(raw)
