"""One Kafka message value for every kind of bad message, with the kind the consumer must report."""

from __future__ import annotations

from coffee.orders.v1 import consumer_status_pb2 as pb

BAD_MESSAGES: list[tuple[str, bytes | None, int]] = [
    ("empty value", b"", pb.ERROR_KIND_EMPTY_VALUE),
    ("null value", None, pb.ERROR_KIND_EMPTY_VALUE),
    ("JSON null", b"null", pb.ERROR_KIND_EMPTY_VALUE),
    (
        "invalid UTF-8",
        b'{"customer_name":"\xff\xfe","coffee_type":"Latte"}',
        pb.ERROR_KIND_INVALID_UTF8,
    ),
    ("not JSON", b"two lattes please", pb.ERROR_KIND_NOT_JSON),
    ("truncated JSON", b'{"customer_name":"Ann"', pb.ERROR_KIND_NOT_JSON),
    ("JSON array", b'["Ann","Latte"]', pb.ERROR_KIND_NOT_AN_OBJECT),
    ("JSON string", b'"Ann wants a Latte"', pb.ERROR_KIND_NOT_AN_OBJECT),
    ("missing field", b'{"customer_name":"Ann"}', pb.ERROR_KIND_MISSING_FIELD),
    ("null field", b'{"customer_name":null,"coffee_type":"Latte"}', pb.ERROR_KIND_MISSING_FIELD),
    ("wrong type", b'{"customer_name":42,"coffee_type":"Latte"}', pb.ERROR_KIND_WRONG_TYPE),
    ("blank field", b'{"customer_name":"   ","coffee_type":"Latte"}', pb.ERROR_KIND_BLANK_FIELD),
    (
        "oversized field",
        b'{"customer_name":"' + b"x" * 300 + b'","coffee_type":"Latte"}',
        pb.ERROR_KIND_OVERSIZED_FIELD,
    ),
    (
        "control characters",
        b'{"customer_name":"Ann\\u0007","coffee_type":"Latte"}',
        pb.ERROR_KIND_CONTROL_CHARACTERS,
    ),
]
