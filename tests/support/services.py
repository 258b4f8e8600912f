"""Run our services in-process on port 0, for tests that talk to them over real gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import grpc
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee.orders.v1 import consumer_status_pb2_grpc, orders_pb2, orders_pb2_grpc
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.settings import ServiceSettings
from coffee_orders_consumer.app import serve as serve_consumer
from coffee_orders_consumer.settings import ConsumerSettings
from coffee_orders_producer.app import serve as serve_producer
from coffee_orders_producer.metrics import ProducerMetrics
from coffee_orders_producer.settings import ProducerSettings
from grpc_health.v1 import health_pb2, health_pb2_grpc

Serve = Callable[..., Coroutine[Any, Any, None]]


def producer_settings(bootstrap: str, **kafka: Any) -> ProducerSettings:
    return ProducerSettings(
        listen="127.0.0.1:0",
        grace_period_s=5,
        kafka=KafkaSettings(brokers=tuple(bootstrap.split(",")), **kafka),
    )


def consumer_settings(bootstrap: str, group_id: str, **kafka: Any) -> ConsumerSettings:
    return ConsumerSettings(
        listen="127.0.0.1:0",
        grace_period_s=10,
        kafka=KafkaSettings(brokers=tuple(bootstrap.split(",")), group_id=group_id, **kafka),
    )


def running_producer(
    settings: ProducerSettings,
    stop: asyncio.Event | None = None,
    metrics: ProducerMetrics | None = None,
) -> contextlib.AbstractAsyncContextManager[str]:
    """The producer in-process; setting ``stop`` (when given) starts its shutdown early;
    ``metrics`` (when given) are the instance's, for the test to read."""
    return _running(serve_producer, settings, stop, metrics=metrics)


def running_consumer(settings: ConsumerSettings) -> contextlib.AbstractAsyncContextManager[str]:
    return _running(serve_consumer, settings)


@contextlib.asynccontextmanager
async def running_pair(bootstrap: str, topic: str) -> AsyncIterator[tuple[str, str]]:
    """Producer and consumer in-process on ``topic`` (group ``g-<topic>``): their addresses."""
    consuming = consumer_settings(bootstrap, f"g-{topic}", topic=topic)
    async with (
        running_producer(producer_settings(bootstrap, topic=topic)) as producer,
        running_consumer(consuming) as consumer,
    ):
        yield producer, consumer


@contextlib.asynccontextmanager
async def _running(
    serve: Serve, settings: ServiceSettings, stop: asyncio.Event | None = None, **extra: Any
) -> AsyncIterator[str]:
    """Yield ``127.0.0.1:PORT`` of a service serving until the block ends (or ``stop`` is set)."""
    stop = stop or asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_ready(port: int) -> None:
        ready.set_result(port)

    task = asyncio.create_task(serve(settings, stop=stop, on_ready=on_ready, **extra))
    waiting: set[asyncio.Future[Any]] = {task, ready}
    done, _ = await asyncio.wait(waiting, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what went wrong
    assert ready in done, "the service did not start within 30 s"
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


async def consumer_status(address: str) -> status_pb.GetStatusResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = consumer_status_pb2_grpc.ConsumerStatusServiceStub(channel)
        response: status_pb.GetStatusResponse = await stub.GetStatus(
            status_pb.GetStatusRequest(), timeout=10
        )
        return response


def errors_by_kind(status: status_pb.GetStatusResponse) -> dict[int, int]:
    return {count.kind: count.count for count in status.counters.errors_by_kind}


def brewed_order_ids(records: list[logging.LogRecord]) -> list[str]:
    """order_ids the in-process consumer logged as processed ("brewing ..." lines)."""
    return [
        getattr(record, "fields", {})["order_id"]
        for record in records
        if record.name == "coffee_orders.consumer" and record.getMessage().startswith("brewing ")
    ]


async def health_status(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(reply.status)
