"""Turn a Kafka message into an order, or say exactly what is wrong with it.

Accepts our messages (order_id header, key) and the seed's (no key, no headers: the order_id is
derived from topic, partition and offset, so a redelivery gets the same id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common import wire
from coffee_orders_common.validation import (
    MAX_REQUEST_ID_CHARS,
    InvalidOrder,
    Order,
    ViolationKind,
    validate_order,
)
from confluent_kafka import Message

_KIND_OF_VIOLATION = {
    ViolationKind.MISSING: pb.ERROR_KIND_MISSING_FIELD,
    ViolationKind.WRONG_TYPE: pb.ERROR_KIND_WRONG_TYPE,
    ViolationKind.BLANK: pb.ERROR_KIND_BLANK_FIELD,
    ViolationKind.OVERSIZED: pb.ERROR_KIND_OVERSIZED_FIELD,
    ViolationKind.CONTROL_CHARACTERS: pb.ERROR_KIND_CONTROL_CHARACTERS,
}


@dataclass(frozen=True)
class DecodedOrder:
    order: Order
    order_id: str
    traceparent: str | None = None


class BadMessage(Exception):
    def __init__(self, kind: pb.ErrorKind, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def _order_id(message: Message) -> str:
    header = wire.header_value(message.headers(), wire.ORDER_ID_HEADER)
    if header and len(header) <= MAX_REQUEST_ID_CHARS:
        return header
    key = message.key()
    if isinstance(key, bytes) and 0 < len(key) <= MAX_REQUEST_ID_CHARS:
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return wire.order_id_for_position(
        message.topic() or "", message.partition() or 0, message.offset() or 0
    )


def decode(message: Message) -> DecodedOrder:
    """The order in ``message``, or BadMessage naming the first problem found."""
    value = message.value()
    if not value:
        raise BadMessage(pb.ERROR_KIND_EMPTY_VALUE, "message value is empty")
    assert isinstance(value, bytes)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessage(
            pb.ERROR_KIND_INVALID_UTF8, f"value is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadMessage(pb.ERROR_KIND_NOT_JSON, f"value is not JSON: {exc.msg}") from None
    if body is None:
        raise BadMessage(pb.ERROR_KIND_EMPTY_VALUE, "message value is JSON null")
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise BadMessage(pb.ERROR_KIND_NOT_AN_OBJECT, f"value is a JSON {kind}, not an object")
    try:
        order = validate_order(body.get("customer_name"), body.get("coffee_type"))
    except InvalidOrder as invalid:
        first = invalid.violations[0]
        raise BadMessage(_KIND_OF_VIOLATION[first.kind], str(invalid)) from None
    traceparent = wire.header_value(message.headers(), wire.TRACEPARENT_HEADER)
    return DecodedOrder(order, _order_id(message), wire.valid_traceparent(traceparent))
