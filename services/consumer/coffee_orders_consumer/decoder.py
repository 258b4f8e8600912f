"""Turn a Kafka message into an order, or say exactly what is wrong with it.

Accepts our messages (order_id header, key) and the original format (no key, no headers: the
order_id is derived from topic, partition, offset and timestamp, so a redelivery gets the same id
and a record of a deleted and recreated topic at the same position another).

Everything in a message is the sender's choice, so each step is bounded: the value's size is
checked before it is decoded or parsed, any failure of the JSON parser is NOT_JSON (never a
traceback), and the order_id must be one printable word before it reaches a log line or the
dedup state.

A value is parsed with orjson first (a quarter of json's time), and its result used only when it
is what an order looks like: an object whose customer_name and coffee_type are strings, from a
value with few brackets. Everything else is parsed again with the standard library's json, whose
verdicts and messages the decoder gave before: orjson refuses some values json accepts (NaN,
Infinity, lone surrogate escapes, numbers beyond a double) and accepts nesting deeper than
json's recursion limit, and a number it reads differently is never a field of an order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import orjson
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common import wire
from coffee_orders_common.characters import is_invisible, is_token
from coffee_orders_common.validation import (
    MAX_FIELD_CHARS,
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
    ViolationKind.INVALID_UNICODE: pb.ERROR_KIND_INVALID_UTF8,
}

# The longest value an order can need: both fields at MAX_FIELD_CHARS characters, every one
# written as a JSON surrogate-pair escape (12 bytes), the two keys escaped too (6 bytes a
# character), plus the braces, quotes, colon and comma. Our producer writes at most 837 bytes.
LONGEST_ORDER_BYTES = 2 * MAX_FIELD_CHARS * 12 + 6 * len("customer_name" + "coffee_type") + 13
# Values above this are not parsed (OVERSIZED_VALUE): 64 KiB is 25 times LONGEST_ORDER_BYTES,
# room for JSON whitespace, padding trimmed off the names and unknown fields, yet it bounds
# what one message can cost the parser.
MAX_VALUE_BYTES = 64 * 1024
MAX_ORDER_ID_CHARS = MAX_REQUEST_ID_CHARS
# A value with more brackets than this is parsed by json alone: nesting that deep is its
# recursion limit's to judge (about 1000 levels; orjson allows 1024).
_MAX_FAST_BRACKETS = 100
_MAX_ORDER_ID_BYTES = 4 * MAX_ORDER_ID_CHARS  # UTF-8: at most 4 bytes a character


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


def _order_id_problem(raw: bytes, name: str) -> tuple[str, BadMessage | None]:
    """``raw`` as an order_id, or why it cannot be one (``name`` says where it came from)."""
    if len(raw) > _MAX_ORDER_ID_BYTES:
        reason = f"{name} must be at most {MAX_ORDER_ID_CHARS} characters, got {len(raw)} bytes"
        return "", BadMessage(pb.ERROR_KIND_OVERSIZED_FIELD, reason)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "", BadMessage(pb.ERROR_KIND_INVALID_UTF8, f"{name} is not valid UTF-8")
    if len(text) <= MAX_ORDER_ID_CHARS and is_token(text):
        return text, None
    if len(text) > MAX_ORDER_ID_CHARS:
        reason = f"{name} must be at most {MAX_ORDER_ID_CHARS} characters, got {len(text)}"
        return "", BadMessage(pb.ERROR_KIND_OVERSIZED_FIELD, reason)
    if is_invisible(text):
        return "", BadMessage(pb.ERROR_KIND_BLANK_FIELD, f"{name} must not be blank")
    reason = f"{name} must be one word without control, format or space characters"
    return "", BadMessage(pb.ERROR_KIND_CONTROL_CHARACTERS, reason)


def _order_id(message: Message, headers: wire.Headers) -> str:
    """The order_id header; else the key if it is a well-formed order_id; else the record's
    (from its coordinates and timestamp).

    A malformed order_id header makes the message bad (nobody but a broken or hostile producer
    writes one); a key is only the producer's partitioning choice, so an unusable one is ignored.
    """
    header = wire.header_bytes(headers, wire.ORDER_ID_HEADER)
    if header:
        order_id, problem = _order_id_problem(header, "the order_id header")
        if problem is not None:
            raise problem
        return order_id
    key = message.key()
    if isinstance(key, bytes) and key:
        order_id, problem = _order_id_problem(key, "the key")
        if problem is None:
            return order_id
    return wire.order_id_for_record(
        message.topic() or "", message.partition() or 0, message.offset() or 0, message.timestamp()
    )


def _parse(value: bytes, text: str) -> object:
    """``value`` (``text`` decoded) as JSON: orjson's result when it is an order's shape, else
    json's verdict (see the module's docstring)."""
    if value.count(b"{") + value.count(b"[") <= _MAX_FAST_BRACKETS:
        try:
            body = orjson.loads(value)
        except ValueError:  # orjson.JSONDecodeError: json names the problem, or accepts it
            pass
        else:
            if (
                type(body) is dict
                and type(body.get("customer_name")) is str
                and type(body.get("coffee_type")) is str
            ):
                return body
    return parse_json(text)


def parse_json(text: str) -> object:
    """The standard library's verdict on ``text``: the value, or BadMessage (NOT_JSON)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadMessage(pb.ERROR_KIND_NOT_JSON, f"value is not JSON: {exc.msg}") from None
    except RecursionError:
        raise BadMessage(pb.ERROR_KIND_NOT_JSON, "value is not JSON: nested too deeply") from None
    except ValueError:  # an integer of more than sys.get_int_max_str_digits() digits
        reason = "value is not JSON: a number too long to convert"
        raise BadMessage(pb.ERROR_KIND_NOT_JSON, reason) from None
    except Exception as exc:  # whatever else the parser may raise: still the sender's bytes
        reason = f"value is not JSON: the parser failed ({type(exc).__name__})"
        raise BadMessage(pb.ERROR_KIND_NOT_JSON, reason) from None


def decode(message: Message) -> DecodedOrder:
    """The order in ``message``, or BadMessage naming the first problem found."""
    value = message.value()
    if not value:
        raise BadMessage(pb.ERROR_KIND_EMPTY_VALUE, "message value is empty")
    assert isinstance(value, bytes)
    if len(value) > MAX_VALUE_BYTES:
        reason = f"value is {len(value)} bytes; an order is at most {MAX_VALUE_BYTES} bytes"
        raise BadMessage(pb.ERROR_KIND_OVERSIZED_VALUE, reason)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadMessage(
            pb.ERROR_KIND_INVALID_UTF8, f"value is not valid UTF-8 (byte {exc.start})"
        ) from None
    body = _parse(value, text)
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
    headers = wire.message_headers(message)
    if headers is None:
        raise BadMessage(pb.ERROR_KIND_INVALID_UTF8, "a header name is not valid UTF-8")
    traceparent = wire.header_value(headers, wire.TRACEPARENT_HEADER)
    return DecodedOrder(order, _order_id(message, headers), wire.valid_traceparent(traceparent))


def stated_order_id(message: Message, headers_readable: bool = True) -> str | None:
    """The order_id a rejected record states (its order_id header, else its key) when that is
    a well-formed one; None otherwise (nobody can follow an id the record does not carry)."""
    headers = wire.message_headers(message) if headers_readable else None
    for raw in (wire.header_bytes(headers, wire.ORDER_ID_HEADER), message.key()):
        if isinstance(raw, bytes) and raw:
            order_id, problem = _order_id_problem(raw, "")
            if problem is None:
                return order_id
    return None
