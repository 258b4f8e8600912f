"""The dead-letter flood: bad records with orders among them; how fast the consumer gets through.

The topic is filled first: ``bad`` records that are not orders (so each is reported and copied to
the dead-letter topic) with one valid order after every ``bad_per_good`` of them. A consumer in a
new group then reads it all. Bad records/s counts from the first record handled to the last bad
record dead-lettered; good orders/s from the first record handled to the last order processed, so
it shows how much the flood holds the orders back.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common import wire
from coffee_orders_common.kafka_config import producer_config
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.validation import Order
from coffee_orders_devtools.consumer_status import status
from confluent_kafka import Producer

from bench.consumer_runs import start_consumer

if TYPE_CHECKING:
    from bench.run import Bench


def fill(bootstrap: str, topic: str, bad: int, bad_per_good: int) -> int:
    """Put the flood on ``topic``; returns how many valid orders are among it."""
    producer = Producer(
        producer_config(KafkaSettings(brokers=tuple(bootstrap.split(","))), "bench-flood")
    )
    order = wire.encode_order(Order("Flood Guest", "Latte"))
    good = 0
    for i in range(bad):
        _produce(producer, topic, f"not an order {i}".encode(), None)
        if (i + 1) % bad_per_good == 0:
            order_id = str(uuid.uuid4())
            _produce(producer, topic, order, order_id)
            good += 1
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} flood records were not delivered")
    return good


def _produce(producer: Producer, topic: str, value: bytes, order_id: str | None) -> None:
    headers = wire.order_headers(order_id) if order_id else None
    key = order_id.encode() if order_id else None
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.1)


def _dead_letter_outcomes(reply: pb.GetStatusResponse) -> int:
    """Bad records whose dead-letter copy is settled: written, or recorded as failed."""
    failed = sum(
        c.count for c in reply.counters.errors_by_kind if c.kind == pb.ERROR_KIND_DEAD_LETTER_FAILED
    )
    return int(reply.counters.dead_lettered) + failed


def flood_run(bench: Bench, topic: str, bad: int, good: int, index: int) -> dict[str, Any]:
    """A new consumer group reads the flood; bad records/s and good orders/s."""
    consumer, target = start_consumer(bench, topic, f"consumer-flood-{index}")
    marks: dict[str, float] = {}

    def progress() -> bool:
        reply = status(target)
        now = time.monotonic()
        settled = _dead_letter_outcomes(reply)
        if (settled or reply.counters.processed) and "first" not in marks:
            marks["first"] = now
            marks["cpu_at_first"] = consumer.cpu_seconds()
        if reply.counters.processed >= good:
            marks.setdefault("good", now)
        if settled >= bad:
            marks.setdefault("bad", now)
            marks["failed"] = settled - reply.counters.dead_lettered
        return "good" in marks and "bad" in marks

    try:
        consumer.wait_while_running(progress, 600, f"{consumer.name} getting through the flood")
        cpu = consumer.cpu_seconds() - marks["cpu_at_first"]
        peak = consumer.peak_rss_mb()
    finally:
        consumer.stop()
    bad_seconds = max(marks["bad"] - marks["first"], 1e-3)
    good_seconds = max(marks["good"] - marks["first"], 1e-3)
    return {
        "bad": bad,
        "good": good,
        "per_second": bad / bad_seconds,
        "good_per_second": good / good_seconds,
        "seconds": bad_seconds,
        "good_seconds": good_seconds,
        "dead_letter_failed": marks["failed"],
        "cpu_percent": 100 * cpu / bad_seconds,
        "peak_rss_mb": peak,
    }


def flood(bench: Bench, bad: int, bad_per_good: int) -> dict[str, Any]:
    """``bench.plan.runs`` times: fill a new topic (and its dead-letter topic) and read it. A
    topic per run: the order state is per topic, so a second group on the same one would find
    its orders processed already (skipped as duplicates)."""
    from bench.run import median_of

    runs = []
    for index in range(bench.plan.runs):
        topic = f"bench_flood_{uuid.uuid4().hex[:8]}"
        bench.kafka.ensure_topics([topic, f"{topic}.dlq"])
        good = fill(bench.kafka.bootstrap_servers, topic, bad, bad_per_good)
        runs.append(flood_run(bench, topic, bad, good, index))
    return {"bad": bad, "good": good, "median": median_of(runs), "all_runs": runs}
