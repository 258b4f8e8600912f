"""The Kafka helpers tests use, shared with the fault run (tooling: coffee_orders_devtools)."""

from __future__ import annotations

from coffee_orders_devtools.kafka_io import (
    Record,
    committed_order_states,
    consume_all,
    produce_all,
    produce_records,
    wait_group_offsets_stable,
    watermarks,
)

__all__ = [
    "Record",
    "committed_order_states",
    "consume_all",
    "produce_all",
    "produce_records",
    "wait_group_offsets_stable",
    "watermarks",
]
