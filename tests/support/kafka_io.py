"""The Kafka helpers tests use, most shared with the fault run (tooling: coffee_orders_devtools)."""

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
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

__all__ = [
    "Record",
    "committed_order_states",
    "consume_all",
    "produce_all",
    "produce_records",
    "set_topic_config",
    "wait_group_offsets_stable",
    "watermarks",
]


def set_topic_config(bootstrap: str, topic: str, name: str, value: str) -> None:
    """Set one configuration entry of ``topic`` (incrementally: the others stay)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource], request_timeout=30).values():
        future.result(timeout=35)
