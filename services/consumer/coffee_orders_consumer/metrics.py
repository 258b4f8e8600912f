"""The consumer's Prometheus metrics, one set per service instance in a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common.metrics import instance_registry
from prometheus_client import Counter, Gauge
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LAG_SECONDS = "coffee_orders_consumer_lag_seconds"
_LAG_SECONDS_HELP = "Seconds the oldest record not yet processed has waited (0 when none waits)"


class _LagSeconds(Collector):
    """coffee_orders_consumer_lag_seconds, computed at each scrape: it keeps growing while
    nothing is processed, even when the consume loop is stuck."""

    def __init__(self) -> None:
        self.topic = ""
        self.source: Callable[[], dict[int, float]] = dict

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(LAG_SECONDS, _LAG_SECONDS_HELP, labels=["topic", "partition"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(LAG_SECONDS, _LAG_SECONDS_HELP, labels=["topic", "partition"])
        for partition, seconds in sorted(self.source().items()):
            family.add_metric([self.topic, str(partition)], seconds)
        yield family


class ConsumerMetrics:
    """The consumer's metrics in ``registry``, recorded by its status (ConsumerStatus)."""

    def __init__(self) -> None:
        self.registry = instance_registry()
        counter = partial(Counter, registry=self.registry)
        self.processed = counter("coffee_orders_processed", "Orders decoded and logged")
        self.duplicates = counter(
            "coffee_orders_duplicates_skipped", "Orders skipped as already processed"
        )
        self.errors = counter("coffee_orders_consumer_errors", "Consumer errors by kind", ["kind"])
        for kind, _ in pb.ErrorKind.items():  # exported at 0 from the start, so that an alert
            self.errors.labels(kind.removeprefix("ERROR_KIND_"))  # on increase() sees the first
        self.dead_lettered = counter(
            "coffee_orders_dead_lettered", "Bad messages copied to the DLQ"
        )
        self.dead_letter_excerpts = counter(
            "coffee_orders_dead_letter_excerpts",
            "Bad messages too large (or refused) for the DLQ whole, copied there as an excerpt",
        )
        self.rebalances = counter(
            "coffee_orders_rebalances", "Partition assignment changes", ["change"]
        )
        self.membership = Gauge(
            "coffee_orders_consumer_membership",
            "1 for the instance's standing in its consumer group (MembershipState), else 0",
            ["state"],
            registry=self.registry,
        )
        self.rejoins = counter(
            "coffee_orders_consumer_rejoins",
            "Kafka consumer closed and recreated to rejoin the group, by the state that caused it",
            ["state"],
        )
        self.lag = Gauge(
            "coffee_orders_consumer_lag",
            "Messages not yet committed",
            ["topic", "partition"],
            registry=self.registry,
        )
        self._lag_seconds = _LagSeconds()
        self.registry.register(self._lag_seconds)

    def read_lag_seconds_from(self, topic: str, source: Callable[[], dict[int, float]]) -> None:
        """coffee_orders_consumer_lag_seconds{topic, partition} are ``source()`` when scraped."""
        self._lag_seconds.topic = topic
        self._lag_seconds.source = source
