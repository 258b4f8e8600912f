"""PlaceOrders (the bidirectional stream) against a real Apache Kafka broker."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_client import (
    AsyncCoffeeOrdersClient,
    CoffeeOrdersClient,
    NewOrder,
    PlacedOrder,
    RejectedOrder,
)
from coffee_orders_common import wire
from coffee_orders_localkafka import LocalKafka
from coffee_orders_producer.metrics import ProducerMetrics

from tests.support.kafka_io import consume_all, watermarks
from tests.support.services import order, order_client, producer_settings, running_producer

pytestmark = pytest.mark.kafka


def _placed_total(metrics: ProducerMetrics, code: str) -> float:
    """coffee_orders_placed_total{code} of the in-process producer's metrics."""
    value = metrics.registry.get_sample_value("coffee_orders_placed_total", {"code": code})
    return value or 0.0


def _total_messages(broker: LocalKafka, topic: str) -> int:
    return sum(high - low for low, high in watermarks(broker.bootstrap_servers, topic))


async def test_every_order_is_answered_in_order_and_lands_once(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    orders = [NewOrder(f"guest {i}", "Latte", request_id=f"stream-{i}") for i in range(1200)]
    orders[7] = NewOrder(" ", "Latte", request_id="stream-7")  # invalid: fails alone
    orders[900] = NewOrder("guest 900", "Mocha\x00", request_id="stream-900")
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    metrics = ProducerMetrics()
    counted_before = {code: _placed_total(metrics, code) for code in ("OK", "INVALID_ARGUMENT")}
    async with (
        running_producer(settings, metrics=metrics) as address,
        AsyncCoffeeOrdersClient(address) as client,
    ):
        outcomes = await client.place_orders(orders, batch_size=250, timeout=60)
        repeat = await client.place_orders(orders[:10], batch_size=3, timeout=60)
    # every order is counted by its code: 1198 + 9 repeats OK, 2 + 1 repeat invalid
    assert _placed_total(metrics, "OK") - counted_before["OK"] == 1198 + 9
    assert _placed_total(metrics, "INVALID_ARGUMENT") - counted_before["INVALID_ARGUMENT"] == 2 + 1

    assert len(outcomes) == len(orders)
    rejected = {i: o for i, o in enumerate(outcomes) if isinstance(o, RejectedOrder)}
    assert sorted(rejected) == [7, 900]
    assert all(o.code is grpc.StatusCode.INVALID_ARGUMENT for o in rejected.values())
    assert "customer_name" in rejected[7].message and "coffee_type" in rejected[900].message
    placed = [o for o in outcomes if isinstance(o, PlacedOrder)]
    # In order: each answer is the order_id its own request_id gives.
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, PlacedOrder):
            assert outcome.order_id == wire.order_id_for(f"stream-{i}")
            assert outcome.topic == fresh_topic and outcome.offset >= 0
    # A repeated stream is answered from the ledger: same answers, nothing published again.
    assert [o.order_id for o in repeat if isinstance(o, PlacedOrder)] == [
        o.order_id for o in outcomes[:10] if isinstance(o, PlacedOrder)
    ]
    messages = consume_all(kafka_broker.bootstrap_servers, fresh_topic, len(placed))
    assert _total_messages(kafka_broker, fresh_topic) == len(placed) == 1198
    on_topic = {m.key().decode(): json.loads(m.value()) for m in messages}  # type: ignore[union-attr,arg-type]
    assert len(on_topic) == 1198
    assert on_topic[wire.order_id_for("stream-1199")] == {
        "customer_name": "guest 1199",
        "coffee_type": "Latte",
    }
    where = {(m.partition(), m.offset()) for m in messages}
    assert where == {(o.partition, o.offset) for o in placed}


async def test_a_full_in_flight_limit_slows_the_stream_instead_of_failing_orders(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    settings = settings.model_copy(update={"max_in_flight": 20})
    orders = [NewOrder(f"guest {i}", "Espresso") for i in range(2000)]
    async with running_producer(settings) as address, AsyncCoffeeOrdersClient(address) as client:
        outcomes = await client.place_orders(orders, batch_size=500, timeout=120)
    assert len(outcomes) == 2000
    assert all(isinstance(o, PlacedOrder) for o in outcomes), {
        str(o) for o in outcomes if isinstance(o, RejectedOrder)
    }
    assert _total_messages(kafka_broker, fresh_topic) == 2000


@pytest.mark.parametrize("size", [0, 1001])
async def test_an_empty_or_oversized_batch_ends_the_stream_with_invalid_argument(
    kafka_broker: LocalKafka, fresh_topic: str, size: int
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    first = orders_pb2.PlaceOrdersRequest(orders=[order("before", "Latte")])
    bad = orders_pb2.PlaceOrdersRequest(orders=[order(f"g{i}", "Latte") for i in range(size)])
    async with running_producer(settings) as address, order_client(address) as stub:
        call = stub.PlaceOrders(iter([first, bad]), timeout=30)
        replies = []
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for reply in call:
                replies.append(reply)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"1 to 1000 orders, got {size}" in (raised.value.details() or "")
    assert len(replies) == 1 and replies[0].results[0].HasField("confirmed")
    assert _total_messages(kafka_broker, fresh_topic) == 1


async def test_the_blocking_client_streams_too(kafka_broker: LocalKafka, fresh_topic: str) -> None:
    orders = [NewOrder("Ann", "Latte"), NewOrder("", "Latte"), NewOrder("Cy", "Mocha")]
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address:

        def place() -> list[PlacedOrder | RejectedOrder]:
            with CoffeeOrdersClient(address) as client:
                return client.place_orders(orders, batch_size=2, timeout=30)

        outcomes = await asyncio.to_thread(place)
    assert [type(o) for o in outcomes] == [PlacedOrder, RejectedOrder, PlacedOrder]
    assert _total_messages(kafka_broker, fresh_topic) == 2
