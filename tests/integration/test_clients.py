"""The Python clients and the CLI against real services, and a producer restart under load."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from coffee_orders_client import (
    AsyncCoffeeOrdersClient,
    CoffeeOrdersClient,
    OrderNotProcessedInTime,
    OrderState,
    OrderStatus,
    Placement,
    RejectedOrder,
    WatchDeadlineExceeded,
)
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until, wait_until
from coffee_orders_localkafka import LocalKafka

from tests.support.kafka_io import Record, consume_all, produce_all, produce_records
from tests.support.processes import free_port_pair
from tests.support.services import (
    brewed_order_ids,
    consumer_settings,
    producer_settings,
    running_consumer,
    running_pair,
    running_producer,
)

pytestmark = pytest.mark.kafka


async def test_async_client_places_orders_reads_status_and_watches_errors(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, consumer),
        AsyncCoffeeOrdersClient(producer, consumer) as client,
    ):
        placed = await client.place_order("Ann", "Mocha", request_id="async-1")
        again = await client.place_order("Ann", "Mocha", request_id="async-1")
        assert again == placed
        with pytest.raises(RejectedOrder) as rejected:
            await client.place_order("", "Mocha")
        assert rejected.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert rejected.value.field_violations == {"customer_name": "customer_name is required"}

        async def counted() -> bool:
            return (await client.status()).counters.processed >= 1

        await async_wait_until(counted, 30, "the order counted")

        errors = client.watch_errors()
        first_error = asyncio.ensure_future(anext(errors))

        async def streamed() -> bool:
            # Until the stream is subscribed a bad message may pass it by: send until one shows.
            await asyncio.to_thread(produce_all, bootstrap, fresh_topic, [b"not json"])
            await asyncio.wait({first_error}, timeout=1)
            return first_error.done()

        await async_wait_until(streamed, 30, "an error streamed by watch_errors")
        error = first_error.result()
        await errors.aclose()
    assert error.message.startswith("value is not JSON")


def test_sync_client_and_cli(
    kafka_broker: LocalKafka, tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    port, status_port = free_port_pair(), free_port_pair()
    show_logs_on_failure(tmp_path / "producer.log")
    show_logs_on_failure(tmp_path / "consumer.log")
    env = {
        "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
        "KAFKA_GROUP_ID": f"cli-{port}",
    }
    listen = ("--listen", f"127.0.0.1:{port}")
    producer = RunningCommand(tmp_path / "producer.log", "producer", *listen, env=env)
    consumer = RunningCommand(
        tmp_path / "consumer.log", "consumer", "--listen", f"127.0.0.1:{status_port}", env=env
    )
    try:
        producer.wait_for_output("producer listening")
        consumer.wait_for_output("consumer status server listening")
        with CoffeeOrdersClient(f"127.0.0.1:{port}", f"127.0.0.1:{status_port}") as client:
            placed = client.place_order("Bea", "Americano")
            assert placed.topic == "coffee_orders" and placed.offset >= 0
            wait_until(lambda: client.status().counters.processed >= 1, 30, "order counted")
            # Tracking from the sync client, through the producer (its default) to the end.
            states = list(client.watch_order(placed.order_id, placed.placement, timeout=30))
            assert states[-1].state is OrderState.PROCESSED, states
            assert client.get_order(placed.order_id) == states[-1]

        target = ("--target", f"127.0.0.1:{port}")
        ordered = RunningCommand.run_cli(
            "order", "--customer", "John Doe", "--coffee", "Latte", *target, "--json"
        )
        assert ordered.returncode == 0, ordered.stderr
        reply = json.loads(ordered.stdout)
        assert set(reply) == {"order_id", "topic", "partition", "offset", "timestamp", "processing"}
        assert isinstance(reply["offset"], str) and reply["timestamp"].endswith("Z"), reply
        assert reply["processing"] is None, reply  # set only with --wait processed

        plain = RunningCommand.run_cli("order", "--customer", "Cy", "--coffee", "Tea", *target)
        assert plain.stdout.startswith("order ") and " placed: coffee_orders partition " in (
            plain.stdout
        )

        blank = RunningCommand.run_cli("order", "--customer", "  ", "--coffee", "Latte", *target)
        assert blank.returncode == 1
        assert blank.stderr.strip().splitlines() == [
            "coffee-orders order: INVALID_ARGUMENT: invalid order: customer_name must not be blank"
        ]

        status_target = ("--target", f"127.0.0.1:{status_port}")
        as_json = RunningCommand.run_cli("status", *status_target, "--json")
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout)["topic"] == "coffee_orders"

        watching = RunningCommand(
            tmp_path / "watch.log", "status", *status_target, "--watch", env=env
        )
        try:
            # It says so once the daemon has subscribed it: every later error reaches it.
            watching.wait_for_output("watching new errors of consumer group")
            produce_all(kafka_broker.bootstrap_servers, "coffee_orders", [b"[1, 2]"])
            watching.wait_for_output("not_an_object coffee_orders/", timeout=30)
        finally:
            stopped = watching.stop(signal.SIGINT)
        assert stopped == 130 and "Traceback" not in watching.output(), watching.output()
    finally:
        producer.stop()
        consumer.stop()


async def _watched(
    client: AsyncCoffeeOrdersClient,
    order_id: str,
    placement: Placement | None = None,
    timeout: float = 60,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
) -> list[OrderStatus]:
    """Every state WatchOrder streams until it ends."""
    return [status async for status in client.watch_order(order_id, placement, timeout)]


async def test_orders_are_tracked_to_their_end_alike_from_both_services(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    """wait_for="processed", get_order and watch_order through the producer and through the
    consumer: every answer the same, for a processed, a dead-lettered and an unknown order."""
    bootstrap = kafka_broker.bootstrap_servers
    async with (
        running_pair(bootstrap, fresh_topic) as (producer, consumer),
        AsyncCoffeeOrdersClient(producer, consumer) as via_producer,
        AsyncCoffeeOrdersClient(producer, consumer, tracking_target=consumer) as via_consumer,
    ):
        placed = await via_producer.place_order(
            "Ann", "Latte", request_id=f"track-{fresh_topic}", timeout=60, wait_for="processed"
        )
        processing = placed.processing
        assert processing is not None and processing.state is OrderState.PROCESSED, placed
        assert (processing.order_id, processing.topic) == (placed.order_id, fresh_topic)
        assert processing.placement == placed.placement
        assert processing.time is not None and processing.processed_by, processing
        assert await via_producer.place_order(
            "Ann", "Latte", request_id=f"track-{fresh_topic}", timeout=60, wait_for="processed"
        ) == placed  # fmt: skip

        confirmed = await via_producer.place_order("Bob", "Mocha", timeout=30)
        assert confirmed.processing is None
        for client in (via_producer, via_consumer):
            assert await client.get_order(placed.order_id) == processing
            assert await client.get_order(placed.order_id, placed.placement) == processing
            assert await _watched(client, placed.order_id, timeout=30) == [processing]
            states = await _watched(
                client, confirmed.order_id, placement=confirmed.placement, timeout=60
            )
            assert states[-1].state is OrderState.PROCESSED, states
            assert {status.state for status in states[:-1]} <= {OrderState.PENDING}, states
            unknown = await client.get_order(str(uuid.uuid4()))
            assert unknown.state is OrderState.NOT_FOUND and unknown.time is None

        # A record the consumer rejects, with an order_id: dead-lettered, and said so.
        order_id = str(uuid.uuid4())
        record: Record = (order_id.encode(), b"not json", [("order_id", order_id)])
        await asyncio.to_thread(produce_records, bootstrap, fresh_topic, [record])
        finals = []
        for client in (via_producer, via_consumer):
            final = (await _watched(client, order_id, timeout=60))[-1]
            assert final.state is OrderState.DEAD_LETTERED, final
            assert final.error_kind == "NOT_JSON" and final.reason and final.topic == fresh_topic
            finals.append(final)
            assert await client.get_order(order_id) == final
        assert finals[0] == finals[1]


async def test_an_order_not_processed_in_time_is_placed_and_can_be_followed(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path
) -> None:
    """The consumer is down: wait_for="processed" ends with OrderNotProcessedInTime carrying
    where the order is; GetOrder says PENDING; once the consumer is back, WatchOrder sees it
    processed at that very place."""
    bootstrap = kafka_broker.bootstrap_servers
    consuming = consumer_settings(bootstrap, f"g-{fresh_topic}", topic=fresh_topic)
    async with (
        running_producer(producer_settings(bootstrap, topic=fresh_topic)) as producer,
        AsyncCoffeeOrdersClient(producer) as client,
    ):
        async with running_consumer(consuming):  # the group and its state exist, then it stops
            await client.place_order("Ann", "Latte", timeout=60, wait_for="processed")
        with pytest.raises(OrderNotProcessedInTime) as raised:
            await client.place_order("Cy", "Tea", timeout=3, wait_for="processed")
        late = raised.value
        assert late.code is grpc.StatusCode.DEADLINE_EXCEEDED and "placed" in late.message
        assert late.placed.topic == fresh_topic and late.offset >= 0 and late.order_id
        pending = await client.get_order(late.order_id, late.placement)
        assert pending.state is OrderState.PENDING and pending.placement == late.placement
        with pytest.raises(WatchDeadlineExceeded) as still:
            await _watched(client, late.order_id, placement=late.placement, timeout=2)
        assert still.value.last is not None and still.value.last.state is OrderState.PENDING

        async with running_consumer(consuming):
            states = await _watched(client, late.order_id, placement=late.placement, timeout=60)
        assert states[-1].state is OrderState.PROCESSED, states
        assert states[-1].placement == late.placement


def test_unreachable_target_is_one_clear_line() -> None:
    port = free_port_pair()
    result = RunningCommand.run_cli("status", "--target", f"127.0.0.1:{port}", "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == f"coffee-orders status: 127.0.0.1:{port}: UNAVAILABLE"


async def test_service_config_rides_through_a_producer_restart(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Orders keep flowing while the producer restarts; each is on the topic and logged once."""
    caplog.set_level(logging.INFO, logger="coffee_orders.consumer")
    bootstrap = kafka_broker.bootstrap_servers
    port = free_port_pair()
    env = {"KAFKA_BROKERS": bootstrap, "KAFKA_TOPIC": fresh_topic, "COFFEE_GRACE_PERIOD": "5"}
    logs = [tmp_path / "producer-1.log", tmp_path / "producer-2.log"]
    for log in logs:
        show_logs_on_failure(log)
    listen = ("producer", "--listen", f"127.0.0.1:{port}")
    first = RunningCommand(logs[0], *listen, env=env)
    await asyncio.to_thread(first.wait_for_output, "producer listening")
    placed: list[str] = []
    restarted = asyncio.Event()
    consuming = consumer_settings(bootstrap, f"g-{fresh_topic}", topic=fresh_topic)
    async with (
        running_consumer(consuming),
        AsyncCoffeeOrdersClient(f"127.0.0.1:{port}") as client,
    ):

        async def keep_placing(worker: int) -> None:
            """Place orders one after another until 10 more went through after the restart."""
            after_restart = 0
            while after_restart < 10:
                was_restarted = restarted.is_set()
                number = len(placed)
                reply = await client.place_order(
                    f"Guest {worker}-{number}", "Latte", request_id=f"restart-{worker}-{number}"
                )
                placed.append(reply.order_id)
                after_restart += was_restarted

        placing = asyncio.gather(*(keep_placing(worker) for worker in range(4)))
        await async_wait_until(lambda: _at_least(placed, 40), 30, "40 orders before restart")
        await asyncio.to_thread(first.stop, signal.SIGTERM)
        second = RunningCommand(logs[1], *listen, env=env)
        restarted.set()
        try:
            await asyncio.wait_for(placing, 60)
        finally:
            await asyncio.to_thread(second.stop, signal.SIGTERM)
        total = len(placed)

        def brewed() -> list[str]:
            return brewed_order_ids(caplog.records)

        await async_wait_until(
            lambda: _at_least(brewed(), total), 60, "every order logged by the consumer"
        )
    on_topic = await asyncio.to_thread(consume_all, bootstrap, fresh_topic, total, 30)
    keys = Counter(message.key().decode() for message in on_topic)  # type: ignore[union-attr]
    print(f"figures: orders={total} on_topic={len(on_topic)} logged={len(brewed())}")
    assert len(set(placed)) == total
    assert sorted(keys) == sorted(placed) and set(keys.values()) == {1}, "once on the topic"
    assert Counter(brewed()) == Counter(placed), "each logged once"
    assert "producer stopped" in first.output() and "producer listening" in second.output()


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count
