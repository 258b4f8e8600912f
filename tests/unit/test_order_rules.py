"""Validation and the wire format: pure functions, no Kafka."""

from __future__ import annotations

import json
import uuid

import pytest
from coffee_orders_common import wire
from coffee_orders_common.validation import (
    MAX_REQUEST_ID_CHARS,
    InvalidOrder,
    Order,
    ViolationKind,
    check_text_field,
    validate_order,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def test_valid_order_is_trimmed() -> None:
    assert validate_order("  John Doe ", "Latte\t") == Order("John Doe", "Latte")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("", ViolationKind.MISSING),
        (None, ViolationKind.MISSING),
        ("   ", ViolationKind.BLANK),
        ("x" * 101, ViolationKind.OVERSIZED),
        ("John\x00Doe", ViolationKind.CONTROL_CHARACTERS),
        ("John\nDoe", ViolationKind.CONTROL_CHARACTERS),
        (42, ViolationKind.WRONG_TYPE),
    ],
)
def test_each_broken_rule_names_the_field(name: object, kind: ViolationKind) -> None:
    with pytest.raises(InvalidOrder) as invalid:
        validate_order(name, "Latte")
    (violation,) = invalid.value.violations
    assert violation.field == "customer_name" and violation.kind is kind
    assert "customer_name" in violation.description


def test_exactly_100_characters_and_unicode_are_fine() -> None:
    assert validate_order("é" * 100, "Café crème").coffee_type == "Café crème"


def test_value_is_exactly_the_seed_json() -> None:
    value = wire.encode_order(Order("John Doe", "Latte"))
    assert value == b'{"customer_name":"John Doe","coffee_type":"Latte"}'
    assert json.loads(wire.encode_order(Order("Zoë", "Café")).decode()) == {
        "customer_name": "Zoë",
        "coffee_type": "Café",
    }


@given(st.text(), st.text())
@settings(max_examples=300, deadline=None)
def test_value_is_byte_for_byte_what_json_dumps_writes(name: str, coffee: str) -> None:
    """Any text (quotes, backslashes, control and non-ASCII characters, surrogates)."""
    expected = json.dumps(
        {"customer_name": name, "coffee_type": coffee}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8", "surrogatepass")
    try:
        value = wire.encode_order(Order(name, coffee))
    except UnicodeEncodeError:  # a lone surrogate: validation refuses it before this point
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in name + coffee)
        return
    assert value == expected


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_a_name_based_order_id_is_what_uuid5_makes(name: str) -> None:
    try:
        expected = str(uuid.uuid5(wire.ORDER_ID_NAMESPACE, name))
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        with pytest.raises(UnicodeEncodeError):
            wire.name_uuid(name)
        return
    assert wire.name_uuid(name) == expected


def test_a_random_order_id_is_a_version_4_uuid_and_never_repeats() -> None:
    ids = {wire.order_id_for("") for _ in range(10_000)}
    assert len(ids) == 10_000
    for order_id in list(ids)[:1000]:
        parsed = uuid.UUID(order_id)
        assert str(parsed) == order_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_request_id_gives_a_stable_order_id_and_no_request_id_a_fresh_one() -> None:
    assert wire.order_id_for("abc") == wire.order_id_for("abc")
    assert wire.order_id_for("abc") != wire.order_id_for("abd")
    assert wire.order_id_for("") != wire.order_id_for("")
    uuid.UUID(wire.order_id_for(""))


def test_headers_carry_order_id_content_type_and_valid_traceparent_only() -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = wire.order_headers("id-1", wire.valid_traceparent(trace))
    assert wire.header_value(headers, "order_id") == "id-1"
    assert wire.header_value(headers, "content-type") == "application/json"
    assert wire.header_value(headers, "traceparent") == trace
    assert wire.valid_traceparent("not-a-trace") is None
    assert wire.header_value(None, "order_id") is None


INVISIBLE_NAMES = [
    ("zero-width space", "\u200b"),
    ("zero-width joiners", "\u200c\u200d"),
    ("word joiner and BOM", "\u2060\ufeff"),
    ("bidi override and isolate", "\u202e\u2066"),
    ("soft hyphen", "\xad"),
    ("Hangul fillers", "\u3164\u115f\uffa0"),
    ("braille blank", "\u2800"),
    ("variation selector", "\ufe0f"),
    ("tag characters", "\U000e0041\U000e007f"),
    ("ideographic and no-break spaces", "\u3000\xa0"),
    ("a mix with spaces", " \u200b \u2028 \u200e "),
]


@pytest.mark.parametrize(("what", "name"), INVISIBLE_NAMES, ids=[n[0] for n in INVISIBLE_NAMES])
@pytest.mark.parametrize("field", ["customer_name", "coffee_type"])
def test_a_field_of_invisible_characters_only_is_blank(field: str, what: str, name: str) -> None:
    fields = {"customer_name": "Ann", "coffee_type": "Latte", field: name}
    with pytest.raises(InvalidOrder) as invalid:
        validate_order(fields["customer_name"], fields["coffee_type"])
    (violation,) = invalid.value.violations
    assert violation.field == field and violation.kind is ViolationKind.BLANK, what


@pytest.mark.parametrize(
    "name",
    [
        "Ann\u200b",
        "\u200bAnn",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    ],
)
def test_visible_text_with_invisible_characters_in_it_is_not_blank(name: str) -> None:
    assert validate_order(name, "Latte").customer_name == name


def test_a_lone_surrogate_is_invalid_unicode() -> None:
    with pytest.raises(InvalidOrder) as invalid:
        validate_order("Ann", "Latte\udc80")
    (violation,) = invalid.value.violations
    assert violation.field == "coffee_type" and violation.kind is ViolationKind.INVALID_UNICODE


def test_an_invisible_request_id_stays_an_opaque_optional_token() -> None:
    text, problem = check_text_field("request_id", "\u200b", MAX_REQUEST_ID_CHARS, required=False)
    assert problem is None and text == "\u200b"
