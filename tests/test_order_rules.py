"""Validation and the wire format: pure functions, no Kafka."""

from __future__ import annotations

import json
import uuid

import pytest
from coffee_orders_common import wire
from coffee_orders_common.validation import InvalidOrder, Order, ViolationKind, validate_order


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
