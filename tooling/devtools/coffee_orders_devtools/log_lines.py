"""Read our log output back, strictly: a line that is not a record of ours fails the test.

Text: ``TIME LEVEL LOGGER MESSAGE key=value ...`` (values logfmt-quoted when needed, escapes as
in a Python literal), and traceback lines indented by four spaces after their record.
JSON: one object a line with ``time``, ``level``, ``logger`` and ``message``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_HEAD = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<logger>[\w.]+) "
)
_ESCAPE = re.compile(r'\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[nrt"\\])')
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
# A field: a bare key or a quoted one, "=", a bare value or a quoted one.
_FIELD = re.compile(r' ("(?:[^"\\]|\\.)*"|[^ "=\\]+)=("(?:[^"\\]|\\.)*"|[^ "=\\]+)')


@dataclass
class Record:
    time: str
    level: str
    logger: str
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


def unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE:
            return _SIMPLE[code]
        return chr(int(code[1:], 16))

    return _ESCAPE.sub(one, text)


def _token(text: str) -> str:
    return unescape(text[1:-1]) if text.startswith('"') else text


def _first_field(rest: str) -> int:
    """Where the fields start (the space before the first key), or len(rest) without any."""
    split = rest.find("=")  # the message never holds a raw "=": the first one is a field's
    if split < 0:
        return len(rest)
    if rest[split - 1] != '"':
        start = rest.rfind(" ", 0, split)
        assert start >= 0, f"a field without a message: {rest!r}"
        return start
    for start in (i for i, char in enumerate(rest[:split]) if char == '"' and rest[i - 1] == " "):
        if _QUOTED.fullmatch(rest, start, split):
            return start - 1
    raise AssertionError(f"an unterminated quoted key: {rest!r}")


def parse_text_line(line: str) -> Record:
    """One text record line; AssertionError if it is not exactly one."""
    head = _HEAD.match(line)
    assert head, f"not a log record: {line!r}"
    rest = line[head.end() :]
    message_end = _first_field(rest)
    message, tail = rest[:message_end], rest[message_end:]
    fields: dict[str, Any] = {}
    position = 0
    for match in _FIELD.finditer(tail):
        assert match.start() == position, f"not a field at {position} of {tail!r}"
        fields[_token(match.group(1))] = _token(match.group(2))
        position = match.end()
    assert position == len(tail), f"trailing text after the fields: {tail[position:]!r}"
    assert "\\" not in _ESCAPE.sub("", message), f"a stray backslash in {message!r}"
    return Record(head["time"], head["level"], head["logger"], unescape(message), fields)


def parse_text_log(output: str) -> list[Record]:
    """Every line is a record or an indented traceback line of the record before it."""
    records: list[Record] = []
    for line in output.split("\n")[:-1] if output.endswith("\n") else output.split("\n"):
        if line.startswith("    ") and records:
            continue
        records.append(parse_text_line(line))
    return records


def parse_json_log(output: str) -> list[Record]:
    """Every line (split only at "\\n", as a log shipper does) is one JSON object of ours."""
    records: list[Record] = []
    for line in output.rstrip("\n").split("\n"):
        assert len(line.splitlines()) == 1, f"a reader would split this line: {line!r}"
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert _HEAD.match(f"{entry['time']} {entry['level']} {entry['logger']} "), line
        known = ("time", "level", "logger", "message", "exception")
        fields = {key: value for key, value in entry.items() if key not in known}
        records.append(
            Record(entry["time"], entry["level"], entry["logger"], entry["message"], fields)
        )
    return records
