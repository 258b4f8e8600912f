"""How large a record the topics take, read from Kafka at start, and client sizes that follow.

librdkafka's own defaults do not know the topics: its producer refuses records over 1,000,000
bytes (``message.max.bytes``) while Kafka's topics take 1,048,588 by default and any size an
operator sets. So the consumer reads ``max.message.bytes`` of its source and dead-letter topics
with the AdminClient and sizes its clients from them; explicit ``kafka.properties`` still win.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coffee_orders_common.kafka_errors import describe_exception
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

log = logging.getLogger("coffee_orders.consumer")

# Kafka's default for the broker's message.max.bytes and so for every topic's max.message.bytes.
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# A record batch's fixed header (Kafka's DefaultRecordBatch.RECORD_BATCH_OVERHEAD).
RECORD_BATCH_OVERHEAD = 61
# librdkafka's defaults and bounds for the properties set here (its CONFIGURATION.md).
_FETCH_MAX_BYTES = 52_428_800
_RECEIVE_MAX_BYTES = 100_000_000
_RECEIVE_MAX_BYTES_LIMIT = 2_147_483_647
_FETCH_MAX_BYTES_LIMIT = 2_147_483_135
_PRODUCER_MAX_BYTES_LIMIT = 1_000_000_000
_BATCH_SIZE = 1_000_000
# A fetch response carries per-partition framing around the record batches.
_RESPONSE_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class TopicLimit:
    topic: str
    max_message_bytes: int
    # "topic" when read from Kafka, else why Kafka's default is assumed.
    origin: str

    @property
    def known(self) -> bool:
        return self.origin == "topic"


def read_topic_limits(
    admin_config: Mapping[str, Any], topics: list[str], timeout_s: float
) -> dict[str, TopicLimit]:
    """``max.message.bytes`` of each topic; Kafka's default (with the reason) where unreadable."""
    unread = {topic: "not read" for topic in topics}
    limits: dict[str, TopicLimit] = {}
    try:
        config: dict[str, Any] = {**admin_config, "logger": logging.getLogger("librdkafka")}
        admin = AdminClient(config)
        resources = [ConfigResource("topic", topic) for topic in topics]
        futures = admin.describe_configs(resources, request_timeout=timeout_s)
        for resource, future in futures.items():
            try:
                entry = future.result(timeout=timeout_s + 1)["max.message.bytes"]
                value = int(entry.value)
            except KafkaException as exc:
                unread[resource.name] = describe_exception(exc)
            except (KeyError, ValueError, TypeError, TimeoutError) as exc:
                unread[resource.name] = f"unexpected answer: {exc!r}"
            else:
                limits[resource.name] = TopicLimit(resource.name, value, "topic")
    except KafkaException as exc:
        unread = dict.fromkeys(unread, str(exc.args[0]))
    for topic in topics:
        if topic not in limits:
            limits[topic] = TopicLimit(topic, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, unread[topic])
            log.warning(
                f"cannot read max.message.bytes of topic {topic}; assuming Kafka's default "
                f"{KAFKA_DEFAULT_MAX_MESSAGE_BYTES}",
                extra={"fields": {"topic": topic, "reason": unread[topic]}},
            )
    return limits


def _unless_set(properties: Mapping[str, str], sizes: dict[str, int]) -> dict[str, str]:
    return {key: str(value) for key, value in sizes.items() if key not in properties}


def consumer_fetch_config(source_limit: int, properties: Mapping[str, str]) -> dict[str, str]:
    """Fetch sizes that let the consumer receive the largest record the source topic takes.

    Kafka returns a record batch larger than ``fetch.max.bytes`` when it is the first one, but
    librdkafka drops a response over ``receive.message.max.bytes``: that one must stay above the
    topic's limit, or a large record stops consumption of its partition for good.
    """
    fetch = int(properties.get("fetch.max.bytes", max(_FETCH_MAX_BYTES, source_limit)))
    fetch = min(fetch, _FETCH_MAX_BYTES_LIMIT)
    receive = max(_RECEIVE_MAX_BYTES, fetch, source_limit) + _RESPONSE_OVERHEAD
    sizes = {
        "fetch.max.bytes": fetch,
        "receive.message.max.bytes": min(receive, _RECEIVE_MAX_BYTES_LIMIT),
    }
    return _unless_set(properties, sizes)


def dead_letter_producer_config(
    dead_letter_limit: int, properties: Mapping[str, str]
) -> dict[str, str]:
    """Producer sizes for copies up to the dead-letter topic's limit, batches within it.

    ``message.max.bytes`` is librdkafka's own check of one record (1,000,000 by default, below
    Kafka's default topic limit); ``batch.size`` keeps several small copies from being sent as one
    batch larger than the topic takes (Kafka refuses the whole batch then).
    """
    sizes = {
        "message.max.bytes": min(dead_letter_limit + _RESPONSE_OVERHEAD, _PRODUCER_MAX_BYTES_LIMIT),
        "batch.size": max(1, min(_BATCH_SIZE, dead_letter_limit - 2 * RECORD_BATCH_OVERHEAD)),
    }
    return _unless_set(properties, sizes)


def _varint_bytes(number: int) -> int:
    """Length of Kafka's zigzag varint encoding of ``number``."""
    zigzag = (number << 1) ^ (number >> 63)
    length = 1
    while zigzag >= 0x80:
        zigzag >>= 7
        length += 1
    return length


def _field_bytes(data: str | bytes | None) -> int:
    if data is None:
        return _varint_bytes(-1)
    size = len(data.encode() if isinstance(data, str) else data)
    return _varint_bytes(size) + size


Headers = list[tuple[str, str | bytes | None]]


def headers_bytes(headers: Headers) -> int:
    """Bytes the headers take in a record (count, then each name and value)."""
    return _varint_bytes(len(headers)) + sum(
        _field_bytes(name) + _field_bytes(value) for name, value in headers
    )


def record_batch_bytes(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """Size of an uncompressed batch holding just this record: what Kafka compares with
    ``max.message.bytes``. A 1-byte timestamp and offset delta, as for a batch's first record."""
    body = 3 + _field_bytes(key) + _field_bytes(value) + headers_bytes(headers)
    return RECORD_BATCH_OVERHEAD + _varint_bytes(body) + body
