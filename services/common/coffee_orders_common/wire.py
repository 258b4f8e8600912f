"""How an order looks on Kafka: the original format's JSON value, metadata in headers, order_id as
key."""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from confluent_kafka import Message

from .validation import Order

CONTENT_TYPE = "application/json"
ORDER_ID_HEADER = "order_id"
CONTENT_TYPE_HEADER = "content-type"
TRACEPARENT_HEADER = "traceparent"

# Fixed namespace: the same request_id (or the same record coordinates) gives the same id.
ORDER_ID_NAMESPACE = uuid.UUID("6f1c1f7e-2b1a-5c55-9f57-3d0f6f3b7c11")
_NAMESPACE_BYTES = ORDER_ID_NAMESPACE.bytes
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]


def order_id_for(request_id: str) -> str:
    """A deterministic order_id for a request_id, or a fresh random one without it."""
    if request_id:
        return name_uuid(f"request:{request_id}")
    return random_uuid()


def random_uuid() -> str:
    """``str(uuid.uuid4())``, made without a UUID object: the same 122 random bits from
    os.urandom, version 4 and the RFC 4122 variant, in a third of the time (once per order)."""
    return _uuid_text(bytearray(os.urandom(16)), 0x40)


def name_uuid(name: str) -> str:
    """``str(uuid.uuid5(ORDER_ID_NAMESPACE, name))``, made without a UUID object (once per
    record in the original format)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()
    return _uuid_text(bytearray(digest[:16]), 0x50)


def _uuid_text(raw: bytearray, version: int) -> str:
    raw[6] = (raw[6] & 0x0F) | version
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    hex_ = raw.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def order_id_for_record(topic: str, partition: int, offset: int, timestamp: tuple[int, int]) -> str:
    """The id given to a record in the original format (no order_id header): from its topic,
    partition, offset and timestamp (``message.timestamp()``: type and milliseconds).

    Kafka stores the timestamp with the record, so a redelivery of the same record gets the same
    id. Topic, partition and offset alone repeat when a topic is deleted and created again (its
    first record is at partition 0, offset 0 once more): the dedup window would then skip a new
    order as a duplicate of the old one. The timestamp tells the two apart.
    """
    kind, millis = timestamp
    return name_uuid(f"record:{topic}/{partition}/{offset}/{kind}/{millis}")


# The string escaper json.dumps(ensure_ascii=False) uses (C), without JSONEncoder's set-up,
# which is rebuilt on every encode() call and cost more than the escaping (once per order).
json_string: Callable[[str], str] = json.encoder.encode_basestring


def encode_order(order: Order) -> bytes:
    """Exactly the original format's JSON, ``{"customer_name":"John Doe","coffee_type":"Latte"}``,
    byte for byte what ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` writes."""
    name, coffee = json_string(order.customer_name), json_string(order.coffee_type)
    return f'{{"customer_name":{name},"coffee_type":{coffee}}}'.encode()


def valid_traceparent(value: str | None) -> str | None:
    """A W3C traceparent worth forwarding, or None."""
    if value and _TRACEPARENT.match(value.strip().lower()):
        return value.strip().lower()
    return None


def order_headers(
    order_id: str, traceparent: str | None = None
) -> list[tuple[str, str | bytes | None]]:
    headers: list[tuple[str, str | bytes | None]] = [
        (ORDER_ID_HEADER, order_id.encode()),
        (CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()),
    ]
    if traceparent:
        headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return headers


# Through methodcaller, whose call always checks the result (an interpreter-specialised
# ``message.headers()`` call site does not; see message_headers).
_READ_HEADERS = operator.methodcaller("headers")


def message_headers(message: Message) -> list[tuple[str, str | bytes | None]] | None:
    """A message's headers ([] when it has none), or None when they cannot be read.

    confluent-kafka decodes header names as UTF-8 and, for a record whose header name is not
    (any producer can write one), returns a list holding a NULL name *with an exception set*.
    A plain call raises SystemError only until CPython specialises the call site; afterwards the
    error surfaces at some later call and the NULL can crash the process. So the call goes
    through a path that always checks, and the unreadable headers are replaced by none for
    every later reader (the DLQ copy).
    """
    try:
        headers = _READ_HEADERS(message) or []
    except (SystemError, UnicodeDecodeError):
        message.set_headers([])
        return None
    return list(headers.items()) if isinstance(headers, dict) else headers


def header_bytes(headers: Headers | None, name: str) -> bytes | None:
    """The last value of a header as bytes, or None when absent."""
    found: bytes | None = None
    # A list (what Kafka gives) is checked first: a Mapping check is an ABC lookup, slower.
    pairs: Iterable[tuple[str, bytes | str | None]]
    if isinstance(headers, list):
        pairs = headers
    else:
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for key, value in pairs:
        if key.lower() == name and value is not None:
            found = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return found


def header_value(headers: Headers | None, name: str) -> str | None:
    """The last value of a header as text, or None when absent or undecodable."""
    raw = header_bytes(headers, name)
    try:
        return None if raw is None else raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
