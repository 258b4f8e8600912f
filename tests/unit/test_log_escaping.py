"""What a record's text can do to a log line: nothing. Both formats, every kind of character."""

from __future__ import annotations

import io
import logging
import re
import sys
import unicodedata

import pytest
from coffee_orders_common import characters
from coffee_orders_common.logs import (
    BatchingStreamHandler,
    JsonFormatter,
    TextFormatter,
    batched_logs,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.log_lines import parse_json_log, parse_text_line, parse_text_log

FORGED = "2026-01-01T00:00:00.000+00:00 INFO coffee_orders.consumer brewing Fake for Mallory"
KINDS = [
    ("line feed", "\n"),
    ("carriage return", "\r"),
    ("tab", "\t"),
    ("NUL", "\x00"),
    ("escape", "\x1b"),
    ("delete", "\x7f"),
    ("C1 next line", "\x85"),
    ("C1 CSI", "\x9b"),
    ("line separator U+2028", "\u2028"),
    ("paragraph separator U+2029", "\u2029"),
    ("bidi embedding LRE", "\u202a"),
    ("bidi embedding RLE", "\u202b"),
    ("bidi pop PDF", "\u202c"),
    ("bidi override LRO", "\u202d"),
    ("bidi override RLO", "\u202e"),
    ("bidi isolate LRI", "\u2066"),
    ("bidi isolate RLI", "\u2067"),
    ("bidi isolate FSI", "\u2068"),
    ("bidi pop PDI", "\u2069"),
    ("right-to-left mark", "\u200f"),
    ("zero-width space", "\u200b"),
    ("zero-width joiner", "\u200d"),
    ("byte order mark", "\ufeff"),
    ("soft hyphen", "\xad"),
    ("tag letter A", "\U000e0041"),
    ("no-break space", "\xa0"),
    ("ideographic space", "\u3000"),
    ("Hangul filler", "\u3164"),
    ("lone surrogate", "\ud800"),
]
READABLE = ["Zoë", "Łukasz Żółć", "東京", "محمد", "Ἀθῆναι", "O'Brien", "José-María", "😀"]


def _record(message: str, fields: dict[str, object], exc_info: object = None) -> logging.LogRecord:
    record = logging.LogRecord(
        "coffee_orders.consumer",
        logging.INFO,
        "",
        0,
        message,
        None,
        exc_info,  # type: ignore[arg-type]
    )
    record.fields = fields
    return record


def _hostile(char: str) -> tuple[str, dict[str, object]]:
    payload = f"Ann{char}{FORGED}"
    return f"brewing Latte for {payload}", {"order_id": payload, f"key{char}": "v", "partition": 2}


@pytest.mark.parametrize(("name", "char"), KINDS, ids=[k[0] for k in KINDS])
def test_text_lines_escape_each_kind_and_read_back_exactly(name: str, char: str) -> None:
    message, fields = _hostile(char)
    line = TextFormatter().format(_record(message, fields))
    assert char not in line, name
    assert len(line.splitlines()) == 1 and not line.startswith(FORGED)
    parsed = parse_text_line(line)
    assert parsed.message == message
    assert parsed.fields == {"order_id": fields["order_id"], f"key{char}": "v", "partition": "2"}


@pytest.mark.parametrize(("name", "char"), KINDS, ids=[k[0] for k in KINDS])
def test_json_lines_escape_each_kind_and_read_back_exactly(name: str, char: str) -> None:
    message, fields = _hostile(char)
    line = JsonFormatter().format(_record(message, fields))
    assert char not in line, name
    (parsed,) = parse_json_log(line)
    assert parsed.message == message
    assert parsed.fields == fields


@pytest.mark.parametrize("name", READABLE)
def test_ordinary_names_stay_as_they_are(name: str) -> None:
    record = _record(f"brewing Café crème for {name}", {"customer": name})
    text = TextFormatter().format(record)
    assert f"brewing Café crème for {name} customer=" in text
    assert parse_text_line(text).fields["customer"] == name
    assert f'"message": "brewing Café crème for {name}"' in JsonFormatter().format(record)


def test_a_value_or_a_message_cannot_add_a_field() -> None:
    record = _record(
        'brewing Latte for Eve order_id=stolen "x"=1',
        {"order_id": 'real partition=9 "q"=1', "partition": 2, "detail": "a\\b"},
    )
    line = TextFormatter().format(record)
    parsed = parse_text_line(line)
    assert parsed.message == 'brewing Latte for Eve order_id=stolen "x"=1'
    assert parsed.fields == {
        "order_id": 'real partition=9 "q"=1',
        "partition": "2",
        "detail": "a\\b",
    }
    assert " order_id=stolen" not in line and "order_id=" in line.split(" partition=")[0]
    assert 'order_id="real partition=9 \\"q\\"=1"' in line
    assert parse_text_line(TextFormatter().format(_record("m", {"empty": ""}))).fields == {
        "empty": ""
    }


def test_a_traceback_stays_below_its_line_indented_and_escaped() -> None:
    try:
        raise ValueError(f"bad\n{FORGED}\x1b[2J")
    except ValueError:
        record = _record("processing a message failed unexpectedly", {}, sys.exc_info())
    text = TextFormatter().format(record)
    first, *trace = text.split("\n")
    assert parse_text_line(first).message == "processing a message failed unexpectedly"
    assert trace and all(line.startswith("    ") for line in trace)
    assert "\x1b" not in text and "\\x1b[2J" in text
    assert len(parse_text_log(text)) == 1
    (entry,) = parse_json_log(JsonFormatter().format(record))
    assert entry.message == "processing a message failed unexpectedly"


def test_batched_lines_are_one_line_a_record_in_both_formats() -> None:
    for formatter, parse in ((TextFormatter(), parse_text_log), (JsonFormatter(), parse_json_log)):
        stream = io.StringIO()
        handler = BatchingStreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger(f"tests.escaping.{type(formatter).__name__}")
        logger.handlers[:] = [handler]
        logger.propagate = False
        with batched_logs():
            for _, char in KINDS:
                message, fields = _hostile(char)
                logger.warning(message, extra={"fields": fields})
        records = parse(stream.getvalue())
        assert [r.message for r in records] == [_hostile(char)[0] for _, char in KINDS]


def _code_points() -> list[int]:
    """Every BMP code point and the astral ranges the table names, with their neighbours."""
    astral = [
        int(bound, 16)
        for bound in re.findall(
            r"\\U([0-9a-f]{8})",
            (characters.FORMAT + characters.VARIATION_SELECTORS).encode("unicode_escape").decode(),
        )
    ]
    around = {cp + delta for cp in astral for delta in (-1, 0, 1)}
    return [*range(0x10000), *sorted(around), 0x1F600, 0x10FFFF]


def test_the_character_table_covers_unicode_categories() -> None:
    unsafe = re.compile(f"[{characters.UNSAFE_IN_LOGS}]")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Zl", "Zp") or (category == "Zs" and char != " "):
            assert unsafe.match(char), f"U+{code:04X} ({category}) is not escaped in logs"
        if category == "Cf" or char.isspace():
            assert characters.is_invisible(char), f"U+{code:04X} ({category}) is not invisible"


def test_the_fast_checks_agree_with_the_table_for_every_character() -> None:
    unsafe = re.compile(f"[{characters.UNSAFE_IN_LOGS}]")
    text, as_json = TextFormatter(), JsonFormatter()
    for code in _code_points():
        char = chr(code)
        escaped = unsafe.match(char) is not None
        record = _record(f"a{char}b", {"k": f"a{char}b"})
        line = text.format(record)
        assert (char not in line) == escaped, f"U+{code:04X} in text"
        quoted = escaped or char in ' "=\\'
        assert ('k="' in line) == quoted, f"U+{code:04X}: quoting"
        json_line = as_json.format(record)
        if escaped:
            assert char not in json_line, f"U+{code:04X} in JSON"
        elif char not in '"\\':
            assert f"a{char}b" in json_line, f"U+{code:04X} in JSON"


# Field names come from our code; JSON's own keys (time, level, ...) are never used as one.
FIELD_NAMES = st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(
    lambda name: name not in {"time", "level", "logger", "message", "exception"}
)


@settings(max_examples=300, deadline=None)
@given(
    message=st.text(),
    values=st.dictionaries(FIELD_NAMES, st.text(), max_size=4),
)
def test_any_message_and_values_read_back_exactly_from_one_line(
    message: str, values: dict[str, str]
) -> None:
    record = _record(message, dict(values))
    text = TextFormatter().format(record)
    assert len(text.splitlines()) == 1
    parsed = parse_text_line(text)
    assert (parsed.message, parsed.fields) == (message, values)
    (entry,) = parse_json_log(JsonFormatter().format(record))
    assert (entry.message, entry.fields) == (message, values)
