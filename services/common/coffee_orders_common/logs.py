"""Logging in two shapes: readable text lines with key=value fields, or one JSON object a line.

Fields that belong to an order (order_id, partition, offset, ...) are passed as
``extra={"fields": {...}}`` so both shapes carry them.

Messages and fields carry what records and callers chose (names, headers), so neither shape
writes them raw: a control character, a line or paragraph separator, a bidi override or another
invisible character is escaped (``\\n``, ``\\x1b``, ``\\u202e``); letters of any script stay
as they are. A text line is ``TIME LEVEL LOGGER MESSAGE key=value ...``: the message never holds
a raw ``=`` or backslash, and a value that holds a space, ``=``, a quote, a backslash or an
escaped character is written in double quotes (logfmt), so no value can end its line or add a
field. A traceback follows its line indented, one escaped line each.

Two speed-ups serve any service that logs a line per record (the consumer logs one per order):

- the time stamp's part up to the second is formatted once a second, not once a line
  (``_timestamp``), in both shapes;
- ``BatchingStreamHandler``, the handler ``configure_logging`` installs for every service, writes
  each line at once like a ``StreamHandler``, except inside a ``batched_logs()`` block: there the
  calling thread's lines are held and written with one write and one flush when the block ends.
  Code that handles records in batches wraps a batch in the block (the consumer's consume loop
  does); other threads and all other code are unaffected.
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

from .characters import (
    BLANK_LETTERS,
    UNSAFE_IN_LOGS,
    UNSAFE_IN_LOGS_BEYOND_C0,
    escape_character,
)
from .librdkafka_logs import StartupNoiseFilter

_SECRET_HINTS = ("password", "secret", "sasl.oauthbearer", "ssl.key")
_REPEAT_DETAIL = re.compile(r"\(after \d+ms[^)]*\)|\d+/\d+ brokers")


def redact(config: dict[str, str]) -> dict[str, str]:
    """A copy of a librdkafka config with secrets masked, safe to log."""
    return {k: ("***" if any(h in k for h in _SECRET_HINTS) else v) for k, v in config.items()}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


# (second, "2026-11-24T10:00:00"): strftime costs more than the rest of a text line's time stamp.
_second_cache: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """``2026-11-24T10:00:00.123+00:00``; the part up to the second is formatted once a second.

    The cache is one tuple, read once and replaced whole, so threads logging at the same time
    never pair one second with another second's prefix.
    """
    global _second_cache
    second = int(record.created)
    cached = _second_cache
    if cached[0] != second:
        cached = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _second_cache = cached
    millis = int((record.created - second) * 1000)
    return f"{cached[1]}.{millis:03d}+00:00"


_UNSAFE = re.compile(f"[{UNSAFE_IN_LOGS}]")
_UNSAFE_IN_MESSAGE = re.compile(f"[=\\\\{UNSAFE_IN_LOGS}]")
_NEEDS_QUOTES = re.compile(f'[ "=\\\\{UNSAFE_IN_LOGS}]')
_UNSAFE_IN_QUOTES = re.compile(f'["\\\\{UNSAFE_IN_LOGS}]')
_BLANK_LETTER = re.compile(f"[{BLANK_LETTERS}]")


# The checks below run for every line: str.isprintable() is one C loop that is False for every
# character of UNSAFE_IN_LOGS except BLANK_LETTERS (and for private-use and unassigned ones,
# which then take the exact, slower path); a regex over the whole class costs several times more.


def _text_message(message: str) -> str:
    if (
        message.isprintable()
        and "=" not in message
        and "\\" not in message
        and (message.isascii() or _BLANK_LETTER.search(message) is None)
    ):
        return message
    return _UNSAFE_IN_MESSAGE.sub(escape_character, message)


def _text_token(value: object) -> str:
    """A key or value of a text line: as it is, or in quotes with escapes (logfmt)."""
    text = value if isinstance(value, str) else str(value)
    if (
        text.isprintable()
        and text
        and " " not in text
        and "=" not in text
        and '"' not in text
        and "\\" not in text
        and (text.isascii() or _BLANK_LETTER.search(text) is None)
    ) or (text and _NEEDS_QUOTES.search(text) is None):  # e.g. private-use characters
        return text
    return f'"{_UNSAFE_IN_QUOTES.sub(escape_character, text)}"'


_keys: dict[object, str] = {}  # field names come from our code: a few dozen at most


def _text_key(key: object) -> str:
    text = _keys.get(key)
    if text is None:
        text = _text_token(key)
        if len(_keys) < 256:
            _keys[key] = text
    return text


class TextFormatter(logging.Formatter):
    """``2026-11-24T10:00:00.000+00:00 INFO consumer brewing Latte for John Doe order_id=...``"""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name]
        parts.append(_text_message(record.getMessage()))
        for key, value in _fields(record).items():
            text = str(value) if type(value) is int else _text_token(value)
            parts.append(f"{_keys.get(key) or _text_key(key)}={text}")
        line = " ".join(parts)
        if record.exc_info:
            trace = self.formatException(record.exc_info).split("\n")
            line += "".join(f"\n    {_UNSAFE.sub(escape_character, part)}" for part in trace)
        return line


# json.dumps escapes C0 controls; these it writes raw (with ensure_ascii=False, which keeps
# names readable): DEL, C1, separators, format and invisible characters, lone surrogates.
_UNSAFE_IN_JSON = re.compile(f"[{UNSAFE_IN_LOGS_BEYOND_C0}]")


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


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
        line = json.dumps(entry, ensure_ascii=False, default=str)
        if line.isascii() and "\x7f" not in line:  # C0 is escaped already
            return line
        return _UNSAFE_IN_JSON.sub(_json_escape, line)


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


_batch_lines = threading.local()


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, inside ``batched_logs()``, holds the calling thread's lines and
    writes them with one write and one flush at the end of the block (other threads, and
    everything outside such a block, are written at once as usual).

    Why: a write and a flush per line is a system call per line; a thread that logs a line for
    each of hundreds of records in a batch spends more time in them than in formatting. Lines
    are formatted when logged (so a record's fields are those of that moment) and only the
    writing waits; a block that raises still writes what it held.
    """

    def emit(self, record: logging.LogRecord) -> None:
        held: list[tuple[BatchingStreamHandler, str]] | None = getattr(_batch_lines, "lines", None)
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
    """Write this thread's log lines (those of ``BatchingStreamHandler``s) in one go when the
    block ends, also when it raises.

    For code that handles records in batches: e.g. the consumer processes a batch of messages
    inside one block and stores their offsets only after it, so a line per order costs one
    write per batch instead of one per order, and no line is held past the batch.
    """
    _batch_lines.lines = []
    try:
        yield
    finally:
        held: list[tuple[BatchingStreamHandler, str]] = _batch_lines.lines
        _batch_lines.lines = None
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
