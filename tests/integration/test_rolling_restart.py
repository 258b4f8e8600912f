"""A Kafka upgrade's rolling restart under load: each of three brokers stopped with SIGTERM,
started again and waited for until every replica is back in sync, then the next one, while
PlaceOrder runs at a fixed rate through the Python client and the consumer processes.

Figures go to docs/reliability.md ("Kafka over TLS and rolling restarts").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from coffee_orders_client import AsyncCoffeeOrdersClient
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.operations import rolling_restart, wait_in_sync

from tests.conftest import new_cluster
from tests.support.load import PacedOutcome, place_at_rate, topic_keys
from tests.support.report import account
from tests.support.secure_kafka import kafka_settings, services_on
from tests.support.services import (
    brewed_order_ids,
    consumer_status,
    running_consumer,
    running_producer,
)

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]
RATE = 50.0  # PlaceOrder calls a second
PASSWORD = "rolling-secret-1618"
# What the producer may answer while leaders move, besides OK.
HONEST_REFUSALS = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}


@pytest.fixture
def three_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """Three nodes with PLAINTEXT and SASL_SSL listeners; replication 3, min.insync 2."""
    cluster = new_cluster(
        tmp_path_factory.mktemp("rolling"), nodes=3, sasl_users={"alice": PASSWORD}, tls=True
    )
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@dataclass
class Pipeline:
    """A producer and a consumer on one listener, and the orders placed through it."""

    listener: str
    topic: str
    client: AsyncCoffeeOrdersClient
    consumer: str
    outcome: PacedOutcome = field(default_factory=PacedOutcome)

    def confirmed_after(self, moment: float) -> Callable[[], Awaitable[bool]]:
        async def enough() -> bool:
            return self.outcome.confirmed_after(moment) >= 100

        return enough


@contextlib.asynccontextmanager
async def _pipeline(cluster: LocalKafka, listener: str, tmp_path: Path) -> AsyncIterator[Pipeline]:
    topic = f"rolling_{listener.lower()}"
    cluster.ensure_topics([topic, f"{topic}.dlq"])
    kafka = kafka_settings(cluster, listener, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=topic)
    producing, consuming = services_on(kafka, tmp_path / listener)
    async with (
        running_consumer(consuming) as consumer,
        running_producer(producing) as producer,
        AsyncCoffeeOrdersClient(producer) as client,
    ):

        async def owns_partitions() -> bool:
            return bool((await consumer_status(consumer)).partitions)

        await async_wait_until(owns_partitions, 60, f"the {listener} consumer owning partitions")
        yield Pipeline(listener, topic, client, consumer)


def _longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time in [start, end] with no order processed."""
    inside = sorted(t for t in times if start <= t <= end)
    edges = [start, *inside, end]
    return round(max(b - a for a, b in itertools.pairwise(edges)), 2)


# Three brokers, two pipelines (one over SASL_SSL) and three restarts, each waiting until every
# replica is in sync: minutes on a loaded machine; 180 s cut a passing run short in CI.
@pytest.mark.timeout(600)
async def test_rolling_restart_under_load_loses_no_confirmed_order(
    three_brokers: LocalKafka,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    """One rolling restart; meanwhile a PLAINTEXT and a SASL_SSL pipeline, each at RATE/s."""
    caplog.set_level(logging.INFO, logger="coffee_orders")
    cluster = three_brokers
    for path in cluster.log_paths():
        show_logs_on_failure(path)
    stop = asyncio.Event()
    async with (
        _pipeline(cluster, "PLAINTEXT", tmp_path) as plain,
        _pipeline(cluster, "SASL_SSL", tmp_path) as secure,
    ):
        pipelines = (plain, secure)
        await asyncio.to_thread(wait_in_sync, cluster)
        loads = [
            asyncio.create_task(place_at_rate(p.client, RATE, stop, p.outcome, p.listener))
            for p in pipelines
        ]
        for pipeline in pipelines:
            await async_wait_until(pipeline.confirmed_after(0), 60, "100 confirmed before")
        began, began_wall = time.monotonic(), time.time()
        steps = await asyncio.to_thread(rolling_restart, cluster)
        ended, ended_wall = time.monotonic(), time.time()
        for pipeline in pipelines:
            await async_wait_until(pipeline.confirmed_after(ended), 60, "100 confirmed after")
        stop.set()
        await asyncio.gather(*loads)

        async def all_processed() -> bool:
            brewed = set(brewed_order_ids(caplog.records))
            return all(set(p.outcome.confirmed) <= brewed for p in pipelines)

        await async_wait_until(all_processed, 120, "every confirmed order processed")
    # Pipelines stop inner first: the SASL_SSL producer's "producer stopped" line comes first.
    stopped = [r for r in caplog.records if r.getMessage() == "producer stopped"]
    answers = dict(zip(("SASL_SSL", "PLAINTEXT"), stopped, strict=True))
    brewed = brewed_order_ids(caplog.records)
    brew_times = {
        getattr(r, "fields", {})["order_id"]: r.created
        for r in caplog.records
        if r.name == "coffee_orders.consumer" and r.getMessage().startswith("brewing ")
    }
    for pipeline in pipelines:
        outcome = pipeline.outcome
        answered = getattr(answers[pipeline.listener], "fields", {})["outcomes"]
        keys = await asyncio.to_thread(topic_keys, cluster.bootstrap_servers, pipeline.topic)
        on_topic = set(keys)
        ours = [brew_times[k] for k in on_topic if k in brew_times]
        figures = account(
            f"11{'a' if pipeline.listener == 'PLAINTEXT' else 'b'}. rolling restart of 3 brokers "
            f"under {RATE:.0f} orders/s ({pipeline.listener})",
            outcome.sent,
            outcome.confirmed,
            keys,
            [order_id for order_id in brewed if order_id in on_topic],
            dict(outcome.failed),
            None,
            producer_answered=answered,
            restart_s=round(ended - began, 1),
            longest_processing_gap_s=_longest_gap(ours, began_wall, ended_wall),
            slowest_confirmation_s=round(max(outcome.confirmed.values()), 2),
            per_broker_s=", ".join(
                f"{s.node_id}: {s.stopped_s}+{s.started_s}+{s.in_sync_s}" for s in steps
            ),
            note="per broker: SIGTERM to exit + start to serving + until every replica in sync",
        )
        assert figures["lost"] == 0 and figures["logged_twice"] == 0
        # Every answer is a confirmation, a refusal the client retries, or the caller's deadline
        # passing while Kafka had not confirmed yet (the order may still land; if it does, it is
        # processed once, as logged_twice shows). On a loaded 2-core machine, three JVMs
        # restarting can hold a confirmation past the client's 10 s deadline.
        assert set(answered) <= {"OK", *HONEST_REFUSALS}, answered
        assert set(outcome.failed) <= {"DEADLINE_EXCEEDED"}, outcome.failed
    assert len(steps) == 3
