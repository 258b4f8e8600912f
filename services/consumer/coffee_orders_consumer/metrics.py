"""The consumer's Prometheus metrics, one set per service instance in a registry of its own."""

from __future__ import annotations

from functools import partial

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common.metrics import instance_registry
from prometheus_client import Counter, Gauge


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
        for kind in pb.ErrorKind.keys():  # exported at 0 from the start, so that an alert on
            self.errors.labels(kind.removeprefix("ERROR_KIND_"))  # increase() sees the first
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
