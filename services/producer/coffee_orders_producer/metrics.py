"""The producer's Prometheus metrics."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge, Histogram

ORDERS = Counter(
    "coffee_orders_placed",
    "Orders (PlaceOrder calls and PlaceOrders orders) by gRPC status code",
    ["code"],
)
PLACE_ORDER_SECONDS = Histogram(
    "coffee_orders_place_order_seconds",
    "PlaceOrder latency, from request to answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DELIVERY_SECONDS = Histogram(
    "coffee_orders_kafka_delivery_seconds",
    "From produce() to Kafka's delivery report",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge(
    "coffee_orders_in_flight", "Orders waiting for Kafka's delivery report"
)  # read from the servicer when scraped (set_function), not set once per order
STREAM_UNANSWERED = Gauge(
    "coffee_orders_stream_unanswered",
    "Orders PlaceOrders streams hold: admitted, answer not yet written to the caller",
)  # read from the stream budget when scraped
KAFKA_QUEUE = Gauge(
    "coffee_orders_kafka_queue_messages", "Messages in librdkafka's local queue (len(producer))"
)


@cache
def orders(code: str) -> Counter:
    """The ORDERS child for one status code, looked up once (this runs once per order)."""
    return ORDERS.labels(code)
