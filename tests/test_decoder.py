"""The consumer's decoder on every message shape, without Kafka."""

from __future__ import annotations

import pytest
from coffee_orders_common import wire
from coffee_orders_common.validation import Order
from coffee_orders_consumer.decoder import BadMessage, decode
from confluent_kafka import Message

from tests.support.bad_messages import BAD_MESSAGES

SEED_VALUE = b'{"customer_name":"John Doe","coffee_type":"Latte"}'


def _message(
    value: bytes | None,
    key: bytes | None = None,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> Message:
    return Message(
        topic="coffee_orders", partition=2, offset=7, value=value, key=key, headers=headers
    )


def test_our_message_uses_the_order_id_header() -> None:
    decoded = decode(_message(SEED_VALUE, key=b"k-1", headers=wire.order_headers("id-1")))
    assert decoded.order == Order("John Doe", "Latte")
    assert decoded.order_id == "id-1"


def test_seed_message_without_key_or_headers_gets_an_id_from_its_position() -> None:
    first = decode(_message(SEED_VALUE))
    assert first.order_id == wire.order_id_for_position("coffee_orders", 2, 7)
    assert decode(_message(SEED_VALUE)).order_id == first.order_id  # a redelivery: same id


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
