"""Logging in two shapes: readable text lines with key=value fields, or one JSON object a line.

Fields that belong to an order (order_id, partition, offset, ...) are passed as
``extra={"fields": {...}}`` so both shapes carry them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_SECRET_HINTS = ("password", "secret", "sasl.oauthbearer", "ssl.key")
_REPEAT_DETAIL = re.compile(r"\(after \d+ms[^)]*\)|\d+/\d+ brokers")


def redact(config: dict[str, str]) -> dict[str, str]:
    """A copy of a librdkafka config with secrets masked, safe to log."""
    return {k: ("***" if any(h in k for h in _SECRET_HINTS) else v) for k, v in config.items()}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``2026-11-24T10:00:00.000+00:00 INFO consumer brewing Latte for John Doe order_id=...``"""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, record.getMessage()]
        parts += [f"{key}={value}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the record's fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RepeatFilter(logging.Filter):
    """Let the same message through once per ``window_s``: librdkafka repeats itself a lot
    while a broker is away (a connection failure every few hundred milliseconds)."""

    def __init__(self, window_s: float = 30.0):
        super().__init__()
        self._window_s = window_s
        self._last_seen: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = _REPEAT_DETAIL.sub("", record.getMessage())
        last = self._last_seen.get(key)
        if last is not None and record.created - last < self._window_s:
            return False
        if len(self._last_seen) > 1000:
            self._last_seen.clear()
        self._last_seen[key] = record.created
        return True


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send all logs to stderr in the chosen shape; replaces earlier handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    librdkafka = logging.getLogger("librdkafka")
    librdkafka.filters[:] = [RepeatFilter()]
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
