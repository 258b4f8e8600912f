"""Lag in seconds against a real broker: GetStatus's lag_seconds and the
coffee_orders_consumer_lag_seconds metric are the age of the oldest order the consumer has not
processed (from the record's timestamp), keep growing while it is held, and are 0 once it is."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from coffee_orders_consumer.consume_loop import ConsumeLoop, Handled
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from confluent_kafka import Message, Producer

from tests.support.processes import free_port_pair
from tests.support.scrape import scrape
from tests.support.services import consumer_settings, consumer_status, running_consumer

pytestmark = pytest.mark.kafka
HOLD_KEY = b"hold-this-order"
AGE_S = 600.0  # the held order was written this long ago (its CreateTime)


def _produce_order(bootstrap: str, topic: str, key: bytes, written_at: float) -> int:
    """An order with CreateTime ``written_at`` (epoch seconds), acknowledged; its partition."""
    delivered: list[Message] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    value = json.dumps({"customer_name": "Lag", "coffee_type": "Latte"}).encode()
    producer.produce(
        topic,
        value,
        key,
        timestamp=int(written_at * 1000),
        on_delivery=lambda err, msg: delivered.append(msg) if err is None else None,
    )
    assert producer.flush(30) == 0 and delivered
    return delivered[0].partition() or 0


def _lag_seconds_metric(port: int, topic: str, partition: int) -> float | None:
    labels = (("partition", str(partition)), ("topic", topic))
    return scrape(port).get(("coffee_orders_consumer_lag_seconds", labels))


async def test_lag_seconds_is_the_age_of_the_oldest_unprocessed_order(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held, release = threading.Event(), threading.Event()
    handle = ConsumeLoop._handle_safely

    def holding(self: ConsumeLoop, message: Message) -> tuple[Message, Handled]:
        if message.error() is None and message.key() == HOLD_KEY:
            held.set()
            release.wait(120)  # the order is in hand and not processed until released
        return handle(self, message)

    monkeypatch.setattr(ConsumeLoop, "_handle_safely", holding)
    bootstrap = kafka_broker.bootstrap_servers
    metrics_port = free_port_pair()
    settings = consumer_settings(bootstrap, f"g-{fresh_topic}", topic=fresh_topic)
    settings = settings.model_copy(update={"metrics_listen": f"127.0.0.1:{metrics_port}"})
    try:
        async with running_consumer(settings) as consumer:

            async def caught_up() -> bool:
                parts = (await consumer_status(consumer)).partitions
                return len(parts) == 3 and all(p.lag_seconds == 0 for p in parts)

            await async_wait_until(caught_up, 60, "three partitions with lag_seconds 0")
            partition = await asyncio.to_thread(
                _produce_order, bootstrap, fresh_topic, HOLD_KEY, time.time() - AGE_S
            )
            await async_wait_until(lambda: asyncio.to_thread(held.wait, 0.1), 60, "held")

            async def aged() -> float | None:
                part = (await consumer_status(consumer)).partitions[partition]
                return part.lag_seconds if part.lag_seconds >= AGE_S else None

            first = await async_wait_until(aged, 30, f"lag_seconds >= {AGE_S}")
            assert first < AGE_S + 60  # the record's age, not some older time
            metric = await asyncio.to_thread(
                _lag_seconds_metric, metrics_port, fresh_topic, partition
            )
            assert metric is not None and metric >= first

            async def older() -> bool:  # still held: the age grows with the clock
                return (await aged() or 0) >= first + 1

            await async_wait_until(older, 30, "lag_seconds growing while the order is held")
            others = [
                p.lag_seconds
                for p in (await consumer_status(consumer)).partitions
                if p.partition != partition
            ]
            assert others == [0, 0]
            release.set()
            await async_wait_until(caught_up, 60, "lag_seconds 0 once the order is processed")
            metric = await asyncio.to_thread(
                _lag_seconds_metric, metrics_port, fresh_topic, partition
            )
            assert metric == 0
    finally:
        release.set()
