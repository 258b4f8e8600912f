"""The rows of the status mapping (docs/api.md) that need a real broker: the local queue full and
a batch sent while the producer shuts down (tests/unit/test_status_mapping.py has the others)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka

from tests.support.kafka_io import watermarks
from tests.support.services import (
    order,
    order_client,
    producer_settings,
    running_producer,
)


@pytest.mark.kafka
async def test_local_queue_full_gives_resource_exhausted_and_publishes_nothing(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    # room for one message in librdkafka's queue, held there for a while by linger.ms
    properties = {"queue.buffering.max.messages": "1", "linger.ms": "3000"}
    settings = producer_settings(
        kafka_broker.bootstrap_servers, topic=fresh_topic, properties=properties
    )
    async with running_producer(settings) as address, order_client(address) as client:
        calls = [client.PlaceOrder(order(request_id=f"q{i}"), timeout=30) for i in range(5)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    confirmed = [o for o in outcomes if not isinstance(o, BaseException)]
    assert refused, "no order found the local queue full"
    for error in refused:
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert "local queue is full" in (error.details() or "")
    assert len(confirmed) + len(refused) == 5
    assert _on_topic(kafka_broker, fresh_topic) == len(confirmed)


@pytest.mark.kafka
async def test_batch_sent_while_the_producer_shuts_down_gets_unavailable(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    stop = asyncio.Event()
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings, stop) as address, order_client(address) as client:
        stream = client.PlaceOrders()
        await stream.write(orders_pb2.PlaceOrdersRequest(orders=[order(request_id="before")]))
        before = await stream.read()
        assert isinstance(before, orders_pb2.PlaceOrdersResponse)
        assert before.results[0].WhichOneof("outcome") == "confirmed"
        stop.set()  # SIGTERM: the stream stays open for the grace period
        confirmed = 1

        async def refused_batch() -> orders_pb2.OrderResult | None:
            """Send one order; its result once the producer refuses it (it may still take it)."""
            nonlocal confirmed
            request = orders_pb2.PlaceOrdersRequest(orders=[order(request_id=f"d{confirmed}")])
            await stream.write(request)
            answer = await stream.read()
            assert isinstance(answer, orders_pb2.PlaceOrdersResponse)
            (result,) = answer.results
            if result.WhichOneof("outcome") == "confirmed":
                confirmed += 1
                return None
            return result

        result = await async_wait_until(refused_batch, 30, "a batch refused while shutting down")
        assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0], result
        assert "shutting down" in result.error.message
        await stream.done_writing()
    assert _on_topic(kafka_broker, fresh_topic) == confirmed


def _on_topic(broker: LocalKafka, topic: str) -> int:
    return sum(high - low for low, high in watermarks(broker.bootstrap_servers, topic))
