"""The consumer's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PROCESSED = Counter("coffee_orders_processed", "Orders decoded and logged")
DUPLICATES = Counter("coffee_orders_duplicates_skipped", "Orders skipped as already processed")
ERRORS = Counter("coffee_orders_consumer_errors", "Consumer errors by kind", ["kind"])
DEAD_LETTERED = Counter("coffee_orders_dead_lettered", "Bad messages copied to the DLQ")
DEAD_LETTER_EXCERPTS = Counter(
    "coffee_orders_dead_letter_excerpts",
    "Bad messages too large (or refused) for the DLQ whole, copied there as an excerpt",
)
REBALANCES = Counter("coffee_orders_rebalances", "Partition assignment changes", ["change"])
LAG = Gauge("coffee_orders_consumer_lag", "Messages not yet committed", ["topic", "partition"])
