"""The topic changes under running services: deleted and recreated, partitions added."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import pytest
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee_orders_devtools.waiting import async_wait_until, wait_until
from coffee_orders_localkafka import LocalKafka
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewPartitions

from tests.support.load import LoadOutcome, drive, topic_keys
from tests.support.report import account
from tests.support.services import (
    brewed_order_ids,
    consumer_settings,
    consumer_status,
    producer_settings,
    running_consumer,
    running_producer,
)
from tests.support.tools import kcat_produce

pytestmark = pytest.mark.kafka

SEED_VALUE = b'{"customer_name":"Recreated","coffee_type":"Latte"}'
# Only a bound for "hung": new partitions come into use after one metadata refresh
# (kafka_config.METADATA_REFRESH_MS, 10 s) and a rebalance; librdkafka's default was 5 minutes.
HUNG_S = 90


def _new_topic(kafka: LocalKafka, prefix: str, partitions: int) -> str:
    """A topic of this test's own (and its .dlq) with ``partitions`` partitions."""
    topic = f"{prefix}_{uuid.uuid4().hex[:10]}"
    kafka.ensure_topics([topic, f"{topic}.dlq"], partitions=partitions)
    return topic


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
    topic = _new_topic(kafka_broker, "recreated", 3)
    consuming = consumer_settings(bootstrap, f"g-{topic}", topic=topic)
    async with running_consumer(consuming):
        # The original format: no key, no headers (kcat in a thread: the consumer's loop goes on).
        await asyncio.to_thread(kcat_produce, bootstrap, topic, SEED_VALUE, "-p", "0")
        await async_wait_until(lambda: _brewed(caplog, 1), 60, "the first record processed")

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


async def test_running_consumers_read_a_topic_recreated_with_fewer_partitions_from_its_start(
    kafka_broker: LocalKafka, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two members keep running while the topic is deleted and created again with 1 partition
    instead of 3: every order confirmed on the new topic is processed (their positions pointed
    into the old topic), and GetStatus lists only the partition that exists."""
    caplog.set_level(logging.INFO, logger="coffee_orders")
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topic(kafka_broker, "replaced", 3)
    group = f"g-{topic}"
    first = consumer_settings(bootstrap, group, topic=topic)
    second = consumer_settings(bootstrap, group, topic=topic)
    before, after, stop = LoadOutcome(), LoadOutcome(), asyncio.Event()
    async with (
        running_consumer(first) as one,
        running_consumer(second) as other,
        running_producer(producer_settings(bootstrap, topic=topic)) as producer,
    ):
        await drive(producer, 4, asyncio.Event(), before, "old-topic", per_caller=10)
        assert len(before.acknowledged) == 40, before.errors
        await async_wait_until(lambda: _brewed(caplog, 40), 60, "the old topic's orders")
        await asyncio.to_thread(_delete_topic, kafka_broker, topic)
        await asyncio.to_thread(kafka_broker.ensure_topics, [topic], 1)
        load = asyncio.create_task(drive(producer, 2, stop, after, "new-topic"))
        try:

            async def confirmed() -> bool:
                return len(after.acknowledged) >= 30

            await async_wait_until(confirmed, HUNG_S, "30 orders confirmed on the new topic")
        finally:
            stop.set()
            await load
        await asyncio.to_thread(kcat_produce, bootstrap, topic, SEED_VALUE, "-p", "0")
        wanted = set(before.acknowledged) | set(after.acknowledged)

        async def all_processed() -> bool:
            seed = "brewing Latte for Recreated" in caplog.text
            return seed and wanted <= set(brewed_order_ids(caplog.records))

        await async_wait_until(all_processed, HUNG_S, "every order of the new topic processed")
        listed = [
            [part.partition for part in (await consumer_status(address)).partitions]
            for address in (one, other)
        ]
    assert sorted(p for parts in listed for p in parts) == [0], listed  # 1 and 2 are gone
    assert {partition for partition, _ in after.acknowledged.values()} == {0}
    account(
        "21. topic deleted and recreated with 1 partition instead of 3 under two running members "
        "(orders placed on the new topic)",
        after.sent,
        after.acknowledged,
        await asyncio.to_thread(topic_keys, bootstrap, topic),
        brewed_order_ids(caplog.records),
        after.errors,
    )


def _first_brewed_on(records: list[logging.LogRecord], partitions: set[int]) -> float | None:
    """When (time.time()) the consumer first logged an order from one of ``partitions``."""
    times = [
        record.created
        for record in records
        if record.name == "coffee_orders.consumer"
        and record.getMessage().startswith("brewing ")
        and getattr(record, "fields", {}).get("partition") in partitions
    ]
    return min(times) if times else None


async def test_partitions_added_under_load_are_used_and_consumed_within_seconds(
    kafka_broker: LocalKafka, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """2 partitions, orders flowing, 2 more added: the producer places orders on them and the
    consumer group (two members) reads them after one metadata refresh, not librdkafka's 5
    minutes."""
    caplog.set_level(logging.INFO, logger="coffee_orders")
    bootstrap = kafka_broker.bootstrap_servers
    topic = _new_topic(kafka_broker, "growing", 2)
    new_partitions = {2, 3}
    outcome, stop = LoadOutcome(), asyncio.Event()
    group = f"g-{topic}"
    async with (
        running_producer(producer_settings(bootstrap, topic=topic)) as producer,
        running_consumer(consumer_settings(bootstrap, group, topic=topic)) as one,
        running_consumer(consumer_settings(bootstrap, group, topic=topic)) as two,
    ):
        load = asyncio.create_task(drive(producer, 4, stop, outcome, "grow"))
        try:

            async def flowing() -> bool:
                return len(outcome.acknowledged) >= 50

            await async_wait_until(flowing, 60, "orders flowing")
            admin = kafka_broker.admin()
            for future in admin.create_partitions([NewPartitions(topic, 4)]).values():
                await asyncio.to_thread(future.result, 30)
            added, added_wall = time.monotonic(), time.time()

            async def placed_on_new() -> bool:
                return any(p in new_partitions for p, _ in outcome.acknowledged.values())

            await async_wait_until(placed_on_new, HUNG_S, "an order placed on a new partition")
            first_reply_s = time.monotonic() - added

            async def brewed_on_new() -> float | None:
                return _first_brewed_on(caplog.records, new_partitions)

            first_brewed = await async_wait_until(
                brewed_on_new, HUNG_S, "an order processed from a new partition"
            )

            async def both_used() -> bool:
                return all(_first_brewed_on(caplog.records, {p}) for p in new_partitions)

            await async_wait_until(both_used, HUNG_S, "orders processed from both new partitions")
        finally:
            stop.set()
            await load

        async def all_processed() -> bool:
            return set(outcome.acknowledged) <= set(brewed_order_ids(caplog.records))

        await async_wait_until(all_processed, 60, "every acknowledged order processed")
        held = [p.partition for a in (one, two) for p in (await consumer_status(a)).partitions]

    processed_s = round(first_brewed - added_wall, 2)
    on_new = sum(1 for p, _ in outcome.acknowledged.values() if p in new_partitions)
    print(
        f"partitions 2 -> 4: the first order placed on a new one after {first_reply_s:.2f} s, "
        f"the first processed from a new one after {processed_s:.2f} s"
    )
    figures = account(
        "partitions added under load (2 -> 4)",
        outcome.sent,
        outcome.acknowledged,
        await asyncio.to_thread(topic_keys, bootstrap, topic),
        brewed_order_ids(caplog.records),
        outcome.errors,
        recovery_s=processed_s,
        first_placed_on_new_partition_s=round(first_reply_s, 2),
        placed_on_new_partitions=on_new,
        note="recovery = partitions added to the first order processed from a new one",
    )
    assert figures["lost"] == 0 and figures["logged_twice"] == 0, figures
    assert not outcome.errors, outcome.errors
    assert sorted(held) == [0, 1, 2, 3]
