"""The producer's Prometheus metrics, one set per service instance in a registry of its own."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial

from coffee_orders_common.metrics import instance_registry
from prometheus_client import Counter, Gauge, Histogram

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Set in a process's environment, turns prometheus_client's multiprocess mode on in it: its
# metrics are kept in files in that directory (the workers of producer --workers N).
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
GAUGE_WRITE_INTERVAL_S = 1.0  # in multiprocess mode, where no gauge is read when scraped


class ProducerMetrics:
    """The producer's metrics in ``registry``; the gauges are read when scraped (``read_from``)."""

    def __init__(self) -> None:
        self.registry = instance_registry()
        histogram = partial(Histogram, buckets=_SECONDS_BUCKETS, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.orders = Counter(
            "coffee_orders_placed",
            "Orders (PlaceOrder calls and PlaceOrders orders) by gRPC status code",
            ["code"],
            registry=self.registry,
        )
        self.place_order_seconds = histogram(
            "coffee_orders_place_order_seconds", "PlaceOrder latency, from request to answer"
        )
        self.delivery_seconds = histogram(
            "coffee_orders_kafka_delivery_seconds", "From produce() to Kafka's delivery report"
        )
        self.in_flight = gauge(
            "coffee_orders_in_flight", "Orders waiting for Kafka's delivery report"
        )
        self.stream_unanswered = gauge(
            "coffee_orders_stream_unanswered",
            "Orders PlaceOrders streams hold: admitted, answer not yet written to the caller",
        )
        self.kafka_queue = gauge(
            "coffee_orders_kafka_queue_messages",
            "Messages in librdkafka's local queue (len(producer))",
        )
        self._orders_by_code: dict[str, Counter] = {}

    def read_from(
        self,
        in_flight: Callable[[], float],
        stream_unanswered: Callable[[], float],
        kafka_queue: Callable[[], float],
    ) -> None:
        """Read the gauges from the servicer, the stream budget and the publisher when scraped,
        rather than setting them once per order.

        In prometheus_client's multiprocess mode (a worker of ``producer --workers N``) the
        supervisor reads this process's values from files and cannot call functions here, and
        prometheus_client has no gauge function there: the values are written every second.
        """
        readings = [
            (self.in_flight, in_flight),
            (self.stream_unanswered, stream_unanswered),
            (self.kafka_queue, kafka_queue),
        ]
        if MULTIPROC_DIR not in os.environ:
            for gauge, read in readings:
                gauge.set_function(read)
            return
        writer = threading.Thread(target=_write_every_interval, args=(readings,), daemon=True)
        writer.name = "metrics gauges"
        writer.start()

    def count_order(self, code: str, count: int = 1) -> None:
        """``count`` more orders answered with ``code`` (this runs once per call or stream
        batch: the child is looked up once per code)."""
        child = self._orders_by_code.get(code)
        if child is None:
            child = self._orders_by_code[code] = self.orders.labels(code)
        child.inc(count)

    def outcomes(self) -> dict[str, int]:
        """Orders by status code name so far, in the order the codes were first counted."""
        return {
            sample.labels["code"]: int(sample.value)
            for metric in self.orders.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        }


def _write_every_interval(readings: Sequence[tuple[Gauge, Callable[[], float]]]) -> None:
    while True:
        for gauge, read in readings:
            gauge.set(read())
        time.sleep(GAUGE_WRITE_INTERVAL_S)
