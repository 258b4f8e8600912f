"""Logging in two shapes: readable text lines with key=value fields, or one JSON object a line.

Fields that belong to an order (order_id, partition, offset, ...) are passed as
``extra={"fields": {...}}`` so both shapes carry them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .librdkafka_logs import StartupNoiseFilter

_SECRET_HINTS = ("password", "secret", "sasl.oauthbearer", "ssl.key")
_REPEAT_DETAIL = re.compile(r"\(after \d+ms[^)]*\)|\d+/\d+ brokers")


def redact(config: dict[str, str]) -> dict[str, str]:
    """A copy of a librdkafka config with secrets masked, safe to log."""
    return {k: ("***" if any(h in k for h in _SECRET_HINTS) else v) for k, v in config.items()}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


_second_cache: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """``2026-11-24T10:00:00.123+00:00``; the part up to the second is formatted once a second."""
    global _second_cache
    second = int(record.created)
    if _second_cache[0] != second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_cache = (second, prefix)
    millis = int((record.created - second) * 1000)
    return f"{_second_cache[1]}.{millis:03d}+00:00"


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


_held = threading.local()


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, inside ``batched_logs()``, holds the calling thread's lines and
    writes them with one write and one flush at the end of the block (other threads, and
    everything outside such a block, are written at once as usual)."""

    def emit(self, record: logging.LogRecord) -> None:
        held: list[tuple[BatchingStreamHandler, str]] | None = getattr(_held, "lines", None)
        if held is None:
            super().emit(record)
            return
        try:
            held.append((self, self.format(record)))
        except Exception:
            self.handleError(record)

    def write_lines(self, lines: list[str]) -> None:
        with self.lock:  # type: ignore[union-attr]
            self.stream.write("\n".join(lines) + "\n")
            self.flush()


@contextlib.contextmanager
def batched_logs() -> Iterator[None]:
    """Write this thread's log lines in one go when the block ends (also when it raises).

    The consumer processes a batch of messages inside one block and stores their offsets only
    after it: a line per order costs one write per batch instead of one per order.
    """
    _held.lines = []
    try:
        yield
    finally:
        held: list[tuple[BatchingStreamHandler, str]] = _held.lines
        _held.lines = None
        by_handler: dict[BatchingStreamHandler, list[str]] = {}
        for handler, line in held:
            by_handler.setdefault(handler, []).append(line)
        for handler, lines in by_handler.items():
            handler.write_lines(lines)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send all logs to stderr in the chosen shape; replaces earlier handlers."""
    # Our formats use none of these; not collecting them makes each log call cheaper
    # (the logging HOWTO's "Optimization" section).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup (file, line, function) per record
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    librdkafka = logging.getLogger("librdkafka")
    librdkafka.filters[:] = [StartupNoiseFilter(), RepeatFilter()]
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
