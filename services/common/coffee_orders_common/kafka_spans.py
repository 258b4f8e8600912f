"""Spans of Kafka work, named and attributed after OpenTelemetry's messaging semantic
conventions (v1.44.0, the schema the tracer declares; docs/operations.md lists what is set).

- ``send {topic}`` (PRODUCER): one per order handed to Kafka, a child of PlaceOrder's (or
  PlaceOrders') SERVER span, ended on Kafka's delivery report with the partition and offset; its
  context is what travels in the record's ``traceparent`` header.
- ``process {topic}`` (CONSUMER): the consumer processing one order, a child of the send span.
"""

from __future__ import annotations

import contextlib

from . import tracing

SYSTEM = "kafka"
_MAX_KEY_CHARS = 256  # a hostile key may be megabytes: the span gets its start


def send_span(
    topic: str, order_id: str, traceparent: str | None, recorded: bool | None = None
) -> tracing.OpenSpan:
    """The PRODUCER span of one order; pass its ``traceparent`` on in the record.
    ``recorded``: ``tracing.recording()`` when the caller asked it already."""
    return tracing.open_span(
        f"send {topic}",
        traceparent,
        "PRODUCER",
        lambda: {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": order_id,
            "messaging.message.id": order_id,
        },
        recorded,
    )


def delivered(
    span: tracing.OpenSpan, partition: int | None, offset: int | None, error: str | None
) -> None:
    """End a send span on Kafka's delivery report (``error``: the error's name, if any)."""
    if not span.recording:
        return
    attributes: dict[str, str | int] = {}
    if error is None and partition is not None and partition >= 0:
        attributes["messaging.destination.partition.id"] = str(partition)
    if error is None and offset is not None and offset >= 0:
        attributes["messaging.kafka.offset"] = offset
    span.end(attributes, error)


def process_span(
    topic: str,
    group: str,
    partition: int,
    offset: int,
    key: bytes | None,
    order_id: str,
    traceparent: str | None,
) -> contextlib.AbstractContextManager[str | None]:
    """The CONSUMER span of processing one order, under the record's ``traceparent``."""

    def attributes() -> tracing.Attributes:
        found: dict[str, str | int] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.consumer.group.name": group,
            "messaging.kafka.offset": offset,
            "messaging.message.id": order_id,
        }
        if key is not None:
            text = key[: _MAX_KEY_CHARS * 4].decode("utf-8", "replace")[:_MAX_KEY_CHARS]
            found["messaging.kafka.message.key"] = text
        return found

    return tracing.span(f"process {topic}", traceparent, "CONSUMER", attributes)
