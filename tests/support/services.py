"""Run our services in-process on port 0, for tests that talk to them over real gRPC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common.settings import KafkaSettings
from coffee_orders_producer.app import serve
from coffee_orders_producer.settings import ProducerSettings


def producer_settings(bootstrap: str, **kafka: Any) -> ProducerSettings:
    return ProducerSettings(
        listen="127.0.0.1:0",
        grace_period_s=5,
        kafka=KafkaSettings(brokers=tuple(bootstrap.split(",")), **kafka),
    )


@contextlib.asynccontextmanager
async def running_producer(settings: ProducerSettings) -> AsyncIterator[str]:
    """Yield ``127.0.0.1:PORT`` of a producer serving until the block ends."""
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_ready(port: int) -> None:
        ready.set_result(port)

    task = asyncio.create_task(serve(settings, stop=stop, on_ready=on_ready))
    waiting: set[asyncio.Future[Any]] = {task, ready}
    done, _ = await asyncio.wait(waiting, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what went wrong
    assert ready in done, "producer did not start within 30 s"
    try:
        yield f"127.0.0.1:{ready.result()}"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@contextlib.asynccontextmanager
async def order_client(address: str) -> AsyncIterator[orders_pb2_grpc.OrderServiceStub]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield orders_pb2_grpc.OrderServiceStub(channel)


def order(
    customer_name: str = "John Doe", coffee_type: str = "Latte", request_id: str = ""
) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        customer_name=customer_name, coffee_type=coffee_type, request_id=request_id
    )
