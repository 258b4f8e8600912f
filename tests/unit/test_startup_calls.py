"""A call that reaches the producer while it starts is answered at once, never left to its
deadline (no broker needed: the producer's Kafka is a port nobody listens on).

The producer's first look at Kafka then takes its whole timeout (5 s); the port serves meanwhile.
Before that look, PlaceOrder cannot know whether an order would reach Kafka: it answers
UNAVAILABLE (retry with the same request_id), as it does once it knows Kafka is away.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_localkafka.cluster import free_ports
from coffee_orders_producer.app import serve
from coffee_orders_producer.settings import ProducerSettings

DEADLINE_S = 10.0
ANSWERED_WITHIN_S = 2.0  # well before the deadline, on a busy machine too
START_BOUND_S = 30.0
ORDER = orders_pb2.PlaceOrderRequest(
    customer_name="John Doe", coffee_type="Latte", request_id="start-1"
)


async def _place(address: str) -> tuple[grpc.StatusCode, str, float]:
    """One PlaceOrder on a channel of its own (a refused connection's backoff stays with it)."""
    started = time.monotonic()
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await orders_pb2_grpc.OrderServiceStub(channel).PlaceOrder(ORDER, timeout=DEADLINE_S)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or "", time.monotonic() - started
    return grpc.StatusCode.OK, "", time.monotonic() - started


async def test_calls_while_the_producer_starts_get_unavailable_at_once() -> None:
    listen_port, kafka_port = free_ports(2)
    settings = ProducerSettings(
        listen=f"127.0.0.1:{listen_port}",
        grace_period_s=5,
        kafka=KafkaSettings(brokers=(f"127.0.0.1:{kafka_port}",)),
    )
    address = f"127.0.0.1:{listen_port}"
    stop = asyncio.Event()
    ready = asyncio.Event()
    serving = asyncio.create_task(serve(settings, stop=stop, on_ready=lambda _: ready.set()))
    during_start: list[tuple[grpc.StatusCode, str, float]] = []
    try:
        give_up = time.monotonic() + START_BOUND_S
        while not ready.is_set() and not serving.done():
            assert time.monotonic() < give_up, f"not ready within {START_BOUND_S} s"
            answer = await _place(address)
            if not ready.is_set():  # answered before the producer said it was ready
                during_start.append(answer)
        after_start = await _place(address)
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=START_BOUND_S)

    from_the_server = [a for a in during_start if "is starting" in a[1]]
    assert from_the_server, f"no call reached the starting producer: {during_start}"
    for code, details, seconds in during_start:
        assert code is grpc.StatusCode.UNAVAILABLE, (code, details)
        assert seconds < ANSWERED_WITHIN_S, f"answered after {seconds:.1f} s: {details}"
    code, details, seconds = after_start
    assert code is grpc.StatusCode.UNAVAILABLE and "Kafka is unreachable" in details, details
    assert seconds < ANSWERED_WITHIN_S
