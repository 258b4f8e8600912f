"""The topic changes under running services: deleted and recreated, partitions added."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee_orders_devtools.waiting import async_wait_until, wait_until
from coffee_orders_localkafka import LocalKafka
from confluent_kafka import KafkaException

from tests.support.services import (
    brewed_order_ids,
    consumer_settings,
    consumer_status,
    running_consumer,
)
from tests.support.tools import kcat_produce

pytestmark = pytest.mark.kafka

SEED_VALUE = b'{"customer_name":"Recreated","coffee_type":"Latte"}'


def _delete_topic(kafka: LocalKafka, topic: str) -> None:
    admin = kafka.admin()
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result(timeout=30)

    def gone() -> bool:
        try:
            return topic not in admin.list_topics(timeout=5).topics
        except KafkaException:
            return False

    wait_until(gone, 30, f"{topic} deleted")


async def _brewed(caplog: pytest.LogCaptureFixture, count: int) -> list[str] | None:
    ids = brewed_order_ids(caplog.records)
    return ids if len(ids) >= count else None


async def test_a_seed_record_of_a_recreated_topic_is_not_taken_for_the_old_one(
    kafka_broker: LocalKafka, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Partition 0, offset 0 again, same content: only the record's timestamp tells it apart.

    The consumer is stopped while the topic is replaced and started again with its dedup state,
    so it reads the new topic from offset 0 (the group's offsets went with the old topic). A
    consumer running through the replacement keeps its position on partition 0 instead and does
    not read the new offset 0 at all (see docs/reliability.md, "Topic deleted and recreated").
    """
    caplog.set_level(logging.INFO, logger="coffee_orders")
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"recreated_{uuid.uuid4().hex[:10]}"
    kafka_broker.ensure_topics([topic, f"{topic}.dlq"], partitions=3)
    consuming = consumer_settings(bootstrap, tmp_path, f"g-{topic}", topic=topic)
    async with running_consumer(consuming):
        # Seed format: no key, no headers. (kcat in a thread: the consumer's loop keeps going.)
        await asyncio.to_thread(kcat_produce, bootstrap, topic, SEED_VALUE, "-p", "0")
        await async_wait_until(lambda: _brewed(caplog, 1), 60, "the first seed record processed")

    _delete_topic(kafka_broker, topic)
    kafka_broker.ensure_topics([topic], partitions=1)
    kcat_produce(bootstrap, topic, SEED_VALUE, "-p", "0")
    async with running_consumer(consuming) as consumer:

        async def handled() -> status_pb.GetStatusResponse | None:
            status = await consumer_status(consumer)
            counters = status.counters
            return status if counters.processed + counters.duplicates_skipped else None

        status = await async_wait_until(handled, 60, "the new topic's record processed or skipped")

    assert "skipping duplicate" not in caplog.text
    assert status.counters.duplicates_skipped == 0 and status.counters.processed == 1
    ids = brewed_order_ids(caplog.records)
    assert len(ids) == len(set(ids)) == 2, ids
