"""Operations: Prometheus metrics, trace context end to end, structured and secret-free logs."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from coffee_orders_client import CoffeeOrdersClient, RejectedOrder
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until, wait_until
from coffee_orders_localkafka import LocalKafka
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support.kafka_io import produce_all
from tests.support.processes import free_port_pair
from tests.support.scrape import scrape
from tests.support.services import (
    order,
    order_client,
    running_pair,
)
from tests.support.spans import in_memory_spans, spans_of_trace
from tests.support.tools import kcat_read

pytestmark = pytest.mark.kafka
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_metrics_endpoints_move_with_real_traffic(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    port, status_port = free_port_pair(), free_port_pair()
    metrics_port, consumer_metrics_port = free_port_pair(), free_port_pair()
    env = {
        "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
        "KAFKA_TOPIC": fresh_topic,
        "KAFKA_GROUP_ID": f"g-{fresh_topic}",
    }
    logs = [tmp_path / "producer.log", tmp_path / "consumer.log"]
    for log in logs:
        show_logs_on_failure(log)
    producer = RunningCommand(
        logs[0],
        *("producer", "--listen", f"127.0.0.1:{port}"),
        *("--metrics-listen", f"127.0.0.1:{metrics_port}"),
        env=env,
    )
    consumer = RunningCommand(
        logs[1],
        *("consumer", "--listen", f"127.0.0.1:{status_port}"),
        *("--metrics-listen", f"127.0.0.1:{consumer_metrics_port}"),
        env=env,
    )
    try:
        producer.wait_for_output("producer listening")
        consumer.wait_for_output("partitions assigned")
        with CoffeeOrdersClient(f"127.0.0.1:{port}", f"127.0.0.1:{status_port}") as client:
            for i in range(10):
                client.place_order(f"Metric {i}", "Latte")
            with pytest.raises(RejectedOrder):
                client.place_order(" ", "Latte")
            produce_all(kafka_broker.bootstrap_servers, fresh_topic, [b"not json"])
            wait_until(lambda: client.status().counters.dead_lettered >= 1, 30, "DLQ copy")
            wait_until(lambda: all(p.lag == 0 for p in client.status().partitions), 30, "lag 0")
        produced = scrape(metrics_port)
        consumed = scrape(consumer_metrics_port)
    finally:
        producer.stop(signal.SIGTERM)
        consumer.stop(signal.SIGTERM)
    assert produced[("coffee_orders_placed_total", (("code", "OK"),))] >= 10
    assert produced[("coffee_orders_placed_total", (("code", "INVALID_ARGUMENT"),))] >= 1
    assert produced[("coffee_orders_place_order_seconds_count", ())] >= 11
    assert produced[("coffee_orders_kafka_delivery_seconds_count", ())] >= 10
    assert produced[("coffee_orders_in_flight", ())] == 0
    assert ("coffee_orders_kafka_queue_messages", ()) in produced
    assert consumed[("coffee_orders_processed_total", ())] >= 10
    assert consumed[("coffee_orders_consumer_errors_total", (("kind", "NOT_JSON"),))] >= 1
    assert consumed[("coffee_orders_dead_lettered_total", ())] >= 1
    assert consumed[("coffee_orders_duplicates_skipped_total", ())] == 0
    assert consumed[("coffee_orders_rebalances_total", (("change", "assigned"),))] >= 1
    lags = {k: v for k, v in consumed.items() if k[0] == "coffee_orders_consumer_lag"}
    assert lags and set(lags.values()) == {0.0}


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return in_memory_spans()


async def test_traceparent_reaches_kafka_headers_the_consumer_log_and_spans(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    spans: InMemorySpanExporter,
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders.consumer")
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, _),
        order_client(producer) as client,
    ):
        reply = await client.PlaceOrder(
            order("Trace", "Latte"), metadata=(("traceparent", TRACEPARENT),), timeout=30
        )

        async def logged() -> logging.LogRecord | None:
            for record in caplog.records:
                if getattr(record, "fields", {}).get("order_id") == reply.order_id:
                    return record
            return None

        record = await async_wait_until(logged, 30, "the consumer's line for the order")
    _, headers, _ = (
        await asyncio.to_thread(kcat_read, bootstrap, fresh_topic, reply.partition, reply.offset)
    ).split("|", 2)
    assert TRACE_ID in headers
    assert record.fields["trace_id"] == TRACE_ID  # type: ignore[attr-defined]

    # PlaceOrder (SERVER) > send (PRODUCER, its context in the header) > process (CONSUMER)
    by_name = spans_of_trace(spans, TRACE_ID)
    sending, processing = f"send {fresh_topic}", f"process {fresh_topic}"
    assert {"PlaceOrder", sending, processing} <= set(by_name), set(by_name)
    place, send, process = by_name["PlaceOrder"], by_name[sending], by_name[processing]
    assert place.parent is not None and f"{place.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert send.parent is not None and place.context is not None and send.context is not None
    assert send.parent.span_id == place.context.span_id and send.kind is SpanKind.PRODUCER
    assert f"{send.context.span_id:016x}" in headers
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    where = {
        "messaging.system": "kafka",
        "messaging.destination.name": fresh_topic,
        "messaging.destination.partition.id": str(reply.partition),
        "messaging.kafka.offset": reply.offset,
        "messaging.kafka.message.key": reply.order_id,
        "messaging.message.id": reply.order_id,
    }
    assert where.items() <= dict(send.attributes or {}).items()
    assert where.items() <= dict(process.attributes or {}).items()
    assert (process.attributes or {})["messaging.consumer.group.name"] == f"g-{fresh_topic}"


def test_json_logs_carry_order_ids_and_never_the_password(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    secret = "do-not-log-me-1618"
    port, status_port = free_port_pair(), free_port_pair()
    # A secret librdkafka is given but PLAINTEXT does not use: it is part of the logged config.
    # (KAFKA_SASL_PASSWORD without a SASL protocol now stops the service at start.)
    config = tmp_path / "coffee.yaml"
    config.write_text(f"kafka:\n  properties:\n    ssl.key.password: {secret}\n")
    env = {
        "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
        "KAFKA_TOPIC": fresh_topic,
        "KAFKA_GROUP_ID": f"g-{fresh_topic}",
        "COFFEE_LOG_FORMAT": "json",
        "COFFEE_CONFIG": str(config),
    }
    producer = RunningCommand(
        tmp_path / "producer.log", "producer", "--listen", f"127.0.0.1:{port}", env=env
    )
    consumer = RunningCommand(
        tmp_path / "consumer.log", "consumer", "--listen", f"127.0.0.1:{status_port}", env=env
    )
    try:
        producer.wait_for_output("producer listening")
        with CoffeeOrdersClient(f"127.0.0.1:{port}") as client:
            placed = client.place_order("Jay", "Latte")
        consumer.wait_for_output(placed.order_id)
    finally:
        producer.stop(signal.SIGTERM)
        consumer.stop(signal.SIGTERM)
    for command in (producer, consumer):
        lines = [json.loads(line) for line in command.output().splitlines() if line.strip()]
        assert lines and all({"time", "level", "logger", "message"} <= set(x) for x in lines)
        assert secret not in command.output()
    brewed = [
        x for x in map(json.loads, consumer.output().splitlines()) if "brewing" in x["message"]
    ]
    assert brewed[0]["order_id"] == placed.order_id and brewed[0]["partition"] >= 0
