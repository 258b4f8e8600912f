"""Kafka spans carry OpenTelemetry's messaging attributes (the semantic conventions' own names,
from opentelemetry-semantic-conventions), recorded with the SDK's in-memory exporter; no broker
is needed for the spans themselves (tests/integration/test_operations.py follows one order
through Kafka)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from coffee_orders_common import kafka_spans, tracing
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.semconv.schemas import Schemas
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.spans import in_memory_spans, spans_of_trace

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = in_memory_spans()
    exporter.clear()
    yield exporter


def test_the_conventions_version_is_the_one_the_installed_package_knows() -> None:
    assert Schemas.V1_44_0.value == tracing.SCHEMA_URL


def test_a_send_span_names_the_destination_and_ends_with_partition_and_offset(
    spans: InMemorySpanExporter,
) -> None:
    send = kafka_spans.send_span("coffee_orders", "ord-1", CALLER)
    assert send.traceparent is not None and TRACE_ID in send.traceparent
    assert send.traceparent != CALLER  # the record carries the send span's own context
    kafka_spans.delivered(send, 2, 41, None)
    span = spans_of_trace(spans, TRACE_ID)["send coffee_orders"]
    assert span.kind is SpanKind.PRODUCER
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.context is not None and f"{span.context.span_id:016x}" in send.traceparent
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.schema_url == tracing.SCHEMA_URL
    assert dict(span.attributes or {}) == {
        messaging.MESSAGING_SYSTEM: messaging.MessagingSystemValues.KAFKA.value,
        messaging.MESSAGING_OPERATION_TYPE: messaging.MessagingOperationTypeValues.SEND.value,
        messaging.MESSAGING_OPERATION_NAME: "send",
        messaging.MESSAGING_DESTINATION_NAME: "coffee_orders",
        messaging.MESSAGING_DESTINATION_PARTITION_ID: "2",
        messaging.MESSAGING_KAFKA_OFFSET: 41,
        messaging.MESSAGING_KAFKA_MESSAGE_KEY: "ord-1",
        messaging.MESSAGING_MESSAGE_ID: "ord-1",
    }


def test_a_failed_send_is_an_error_span_without_partition_or_offset(
    spans: InMemorySpanExporter,
) -> None:
    send = kafka_spans.send_span("coffee_orders", "ord-2", CALLER)
    kafka_spans.delivered(send, -1, -1001, "_MSG_TIMED_OUT")
    span = spans_of_trace(spans, TRACE_ID)["send coffee_orders"]
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes[error_attributes.ERROR_TYPE] == "_MSG_TIMED_OUT"
    assert messaging.MESSAGING_DESTINATION_PARTITION_ID not in attributes
    assert messaging.MESSAGING_KAFKA_OFFSET not in attributes


def test_a_process_span_names_the_group_partition_offset_and_key(
    spans: InMemorySpanExporter,
) -> None:
    with kafka_spans.process_span(
        "coffee_orders", "coffee-orders", 1, 7, b"ord-3", "ord-3", CALLER
    ) as passed_on:
        assert passed_on is not None and TRACE_ID in passed_on
    span = spans_of_trace(spans, TRACE_ID)["process coffee_orders"]
    assert span.kind is SpanKind.CONSUMER
    assert dict(span.attributes or {}) == {
        messaging.MESSAGING_SYSTEM: "kafka",
        messaging.MESSAGING_OPERATION_TYPE: messaging.MessagingOperationTypeValues.PROCESS.value,
        messaging.MESSAGING_OPERATION_NAME: "process",
        messaging.MESSAGING_DESTINATION_NAME: "coffee_orders",
        messaging.MESSAGING_DESTINATION_PARTITION_ID: "1",
        messaging.MESSAGING_CONSUMER_GROUP_NAME: "coffee-orders",
        messaging.MESSAGING_KAFKA_OFFSET: 7,
        messaging.MESSAGING_KAFKA_MESSAGE_KEY: "ord-3",
        messaging.MESSAGING_MESSAGE_ID: "ord-3",
    }


def test_a_hostile_key_is_cut_short_in_the_span(spans: InMemorySpanExporter) -> None:
    with kafka_spans.process_span("t", "g", 0, 0, b"\xff" * 5_000_000, "ord-4", CALLER):
        pass
    key = spans_of_trace(spans, TRACE_ID)["process t"].attributes or {}
    assert len(str(key[messaging.MESSAGING_KAFKA_MESSAGE_KEY])) <= 256
