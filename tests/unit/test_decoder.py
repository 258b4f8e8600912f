"""The consumer's decoder on every message shape, without Kafka."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common import wire
from coffee_orders_common.validation import Order
from coffee_orders_consumer import decoder
from coffee_orders_consumer.decoder import (
    LONGEST_ORDER_BYTES,
    MAX_VALUE_BYTES,
    BadMessage,
    decode,
)
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.bad_messages import BAD_MESSAGES

SEED_VALUE = b'{"customer_name":"John Doe","coffee_type":"Latte"}'


SEED_TIMESTAMP = (TIMESTAMP_CREATE_TIME, 1_764_000_000_000)


def _message(
    value: bytes | None,
    key: bytes | None = None,
    headers: list[tuple[str, str | bytes | None]] | None = None,
    timestamp: tuple[int, int] = SEED_TIMESTAMP,
) -> Message:
    return Message(
        topic="coffee_orders",
        partition=2,
        offset=7,
        value=value,
        key=key,
        headers=headers,
        timestamp=timestamp,
    )


def test_our_message_uses_the_order_id_header() -> None:
    decoded = decode(_message(SEED_VALUE, key=b"k-1", headers=wire.order_headers("id-1")))
    assert decoded.order == Order("John Doe", "Latte")
    assert decoded.order_id == "id-1"


def test_original_format_message_without_key_or_headers_gets_an_id_from_its_coordinates() -> None:
    first = decode(_message(SEED_VALUE))
    assert first.order_id == wire.order_id_for_record("coffee_orders", 2, 7, SEED_TIMESTAMP)
    assert decode(_message(SEED_VALUE)).order_id == first.order_id  # a redelivery: same id


def test_a_record_at_the_same_position_of_a_recreated_topic_gets_another_id() -> None:
    """A deleted and recreated topic starts again at offset 0: only the timestamp differs."""
    kind, millis = SEED_TIMESTAMP
    first = decode(_message(SEED_VALUE)).order_id
    later = decode(_message(SEED_VALUE, timestamp=(kind, millis + 1))).order_id
    appended = decode(_message(SEED_VALUE, timestamp=(TIMESTAMP_LOG_APPEND_TIME, millis)))
    assert len({first, later, appended.order_id}) == 3


def test_key_is_the_order_id_when_there_is_no_header() -> None:
    assert decode(_message(SEED_VALUE, key=b"from-key")).order_id == "from-key"


def test_extra_fields_are_ignored() -> None:
    value = b'{"customer_name":"Ann","coffee_type":"Mocha","size":"large"}'
    assert decode(_message(value)).order == Order("Ann", "Mocha")


@pytest.mark.parametrize(("name", "value", "kind"), BAD_MESSAGES, ids=[b[0] for b in BAD_MESSAGES])
def test_each_bad_message_names_its_kind(name: str, value: bytes | None, kind: int) -> None:
    with pytest.raises(BadMessage) as bad:
        decode(_message(value))
    assert bad.value.kind == kind, bad.value.reason
    assert bad.value.reason


def _kind_of(message: Message) -> int:
    with pytest.raises(BadMessage) as bad:
        decode(message)
    assert bad.value.reason
    return bad.value.kind


HOSTILE_VALUES = [
    ("100,000 nested arrays", b"[" * 100_000, pb.ERROR_KIND_OVERSIZED_VALUE),
    ("60,000 nested arrays, under the size limit", b"[" * 60_000, pb.ERROR_KIND_NOT_JSON),
    ("10,000 nested objects", b'{"a":' * 10_000, pb.ERROR_KIND_NOT_JSON),
    ("a 5,000-digit integer", b"1" * 5_000, pb.ERROR_KIND_NOT_JSON),
    (
        "a 5,000-digit integer in an extra field",
        b'{"customer_name":"Ann","coffee_type":"Latte","n":' + b"9" * 5_000 + b"}",
        pb.ERROR_KIND_NOT_JSON,
    ),
    ("over the size limit", b" " * (MAX_VALUE_BYTES + 1), pb.ERROR_KIND_OVERSIZED_VALUE),
    (
        "an escaped lone surrogate",
        b'{"customer_name":"\\ud800","coffee_type":"Latte"}',
        pb.ERROR_KIND_INVALID_UTF8,
    ),
    (
        "a lone low surrogate after text",
        b'{"customer_name":"Ann","coffee_type":"Latte\\udfff"}',
        pb.ERROR_KIND_INVALID_UTF8,
    ),
    (
        "zero-width characters only",
        '{"customer_name":"\u200b\u200c\u200d\u2060","coffee_type":"Latte"}'.encode(),
        pb.ERROR_KIND_BLANK_FIELD,
    ),
    (
        "format and filler characters only",
        '{"customer_name":"Ann","coffee_type":" \ufeff\u3164\u202e\u2066 "}'.encode(),
        pb.ERROR_KIND_BLANK_FIELD,
    ),
    (
        "escaped invisible characters only",
        b'{"customer_name":"\\u200b\\u00ad\\ufe0f","coffee_type":"Latte"}',
        pb.ERROR_KIND_BLANK_FIELD,
    ),
]


@pytest.mark.parametrize(
    ("name", "value", "kind"), HOSTILE_VALUES, ids=[h[0] for h in HOSTILE_VALUES]
)
def test_hostile_values_get_a_kind_and_never_escape_as_another_exception(
    name: str, value: bytes, kind: int
) -> None:
    assert _kind_of(_message(value)) == kind, name


def test_the_size_limit_is_above_any_order_and_checked_before_parsing() -> None:
    producers_largest = wire.encode_order(Order("\U0001f600" * 100, '"' * 100))
    assert len(producers_largest) <= LONGEST_ORDER_BYTES < MAX_VALUE_BYTES
    escaped = "\\ud83d\\ude00" * 100
    keys = {k: "".join(f"\\u{ord(c):04x}" for c in k) for k in ("customer_name", "coffee_type")}
    fully_escaped = (
        f'{{"{keys["customer_name"]}":"{escaped}","{keys["coffee_type"]}":"{escaped}"}}'
    ).encode()
    assert len(fully_escaped) == LONGEST_ORDER_BYTES
    assert decode(_message(fully_escaped)).order == Order("\U0001f600" * 100, "\U0001f600" * 100)
    padded = SEED_VALUE[:-1] + b" " * (MAX_VALUE_BYTES - len(SEED_VALUE)) + b"}"
    assert len(padded) == MAX_VALUE_BYTES and decode(_message(padded)).order.coffee_type == "Latte"
    # Not UTF-8 and not JSON either: the size is what is reported, nothing is decoded.
    assert _kind_of(_message(b"\xff" * (MAX_VALUE_BYTES + 1))) == pb.ERROR_KIND_OVERSIZED_VALUE


def test_a_surrogate_pair_is_one_character_not_a_lone_surrogate() -> None:
    value = b'{"customer_name":"Ann \\ud83d\\ude00","coffee_type":"Latte"}'
    assert decode(_message(value)).order.customer_name == "Ann \U0001f600"


FORGED_LINE = (
    "x\n2026-01-01T00:00:00.000+00:00 INFO coffee_orders.consumer brewing Fake for Mallory"
)
BAD_ORDER_ID_HEADERS = [
    ("a forged log line", FORGED_LINE.encode(), pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("an escape sequence", b"\x1b[2J\x1b[31mowned", pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("a line separator", "a\u2028b".encode(), pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("a bidi override", "abc\u202edcba".encode(), pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("a space", b"order 42", pb.ERROR_KIND_CONTROL_CHARACTERS),
    ("zero-width characters only", "\u200b\u200b".encode(), pb.ERROR_KIND_BLANK_FIELD),
    ("10 KB", b"x" * 10_240, pb.ERROR_KIND_OVERSIZED_FIELD),
    ("129 characters", b"x" * 129, pb.ERROR_KIND_OVERSIZED_FIELD),
    ("not UTF-8", b"\xff\xfe", pb.ERROR_KIND_INVALID_UTF8),
]


@pytest.mark.parametrize(
    ("name", "header", "kind"), BAD_ORDER_ID_HEADERS, ids=[b[0] for b in BAD_ORDER_ID_HEADERS]
)
def test_a_malformed_order_id_header_makes_the_message_bad(
    name: str, header: bytes, kind: int
) -> None:
    message = _message(SEED_VALUE, key=b"fine-key", headers=[("order_id", header)])
    assert _kind_of(message) == kind, name


def test_a_well_formed_order_id_of_128_characters_and_unicode_is_used() -> None:
    for order_id in ("x" * 128, "commande-été-東京"):
        headers: list[tuple[str, str | bytes | None]] = [("order_id", order_id.encode())]
        assert decode(_message(SEED_VALUE, headers=headers)).order_id == order_id


@pytest.mark.parametrize(
    "key", [FORGED_LINE.encode(), b"\xff\xfe", b"k" * 200, "a\u2028b".encode(), b"two words"]
)
def test_an_unusable_key_is_ignored_and_the_record_gives_the_id(key: bytes) -> None:
    decoded = decode(_message(SEED_VALUE, key=key))
    assert decoded.order_id == wire.order_id_for_record("coffee_orders", 2, 7, SEED_TIMESTAMP)


def test_an_empty_order_id_header_counts_as_absent() -> None:
    assert decode(_message(SEED_VALUE, key=b"k-1", headers=[("order_id", b"")])).order_id == "k-1"


class _UnreadableHeaders(Message):
    """What confluent-kafka does for a header name that is not UTF-8 (seen with kcat)."""

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        raise SystemError("<method 'headers'> returned a result with an exception set")


def test_a_header_name_that_is_not_utf8_makes_the_message_bad() -> None:
    message = _UnreadableHeaders(topic="coffee_orders", partition=0, offset=1, value=SEED_VALUE)
    assert _kind_of(message) == pb.ERROR_KIND_INVALID_UTF8
    assert wire.message_headers(message) is None


def test_parser_failures_say_what_went_wrong() -> None:
    reasons = {}
    for value in (b"[" * 60_000, b"1" * 5_000):
        with pytest.raises(BadMessage) as bad:
            decode(_message(value))
        reasons[value[:1]] = bad.value.reason
    assert reasons == {
        b"[": "value is not JSON: nested too deeply",
        b"1": "value is not JSON: a number too long to convert",
    }


def _outcome(message: Message) -> tuple[object, ...]:
    try:
        decoded = decode(message)
    except BadMessage as bad:
        return ("bad", bad.kind, bad.reason)
    return ("ok", decoded.order, decoded.order_id)


def _json_alone(value: bytes, text: str) -> object:
    return decoder.parse_json(text)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_FIELD = st.text(max_size=30) | _SCALARS
_ORDERISH = st.fixed_dictionaries(
    {"customer_name": _FIELD, "coffee_type": _FIELD}, optional={"extra": _JSON}
)
# Spliced into an order's text: what orjson and json judge differently, or nest deeply.
_ODDITIES = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", '"\\ud800"', '"\\udfff\\ud800"', "1e400",
     "123456789012345678901234567890", "[" * 120 + "]" * 120, "[" * 990 + "]" * 990,
     "[" * 1030 + "]" * 1030, '{"customer_name":"x"}', "\ufeff"]
)  # fmt: skip


@st.composite
def _values(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "order", "spliced"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(_JSON), ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        )
    body = json.dumps(draw(_ORDERISH), ensure_ascii=draw(st.booleans()))
    if kind == "spliced":
        body = body[:-1] + f',"z":{draw(_ODDITIES)}}}'
    return body.encode("utf-8", "surrogatepass")


@given(_values())
@settings(max_examples=1500, deadline=None)
def test_orjson_first_classifies_every_value_as_json_alone_does(value: bytes) -> None:
    """Every ErrorKind and reason, and every order, as with the standard library's parser."""
    message = _message(value)
    fast = _outcome(message)
    with mock.patch.object(decoder, "_parse", _json_alone):
        reference = _outcome(message)
    assert fast == reference


def test_values_orjson_refuses_or_nests_too_deep_are_judged_by_json() -> None:
    """json accepts NaN and lone surrogates in other fields (an order), and refuses nesting past
    its recursion limit (NOT_JSON), where orjson says otherwise."""
    order = '{"customer_name":"Ann","coffee_type":"Latte","z":%s}'
    for oddity in ["NaN", '"\\ud800"', "1e400"]:
        assert decode(_message((order % oddity).encode())).order == Order("Ann", "Latte")
    deep = (order % ("[" * 1010 + "]" * 1010)).encode()
    with pytest.raises(BadMessage) as bad:
        decode(_message(deep))
    assert bad.value.kind == pb.ERROR_KIND_NOT_JSON
