"""The producer's OrderService on a real in-process grpc.aio server (127.0.0.1, a free port),
publishing through a FakePublisher: PlaceOrder and PlaceOrders over real gRPC, without Kafka.

grpc_testing would call the servicer without a server, but it serves only synchronous servicers
(grpc/grpc#24942: no grpc.aio support), so the tests talk to the real server through its stub.
Only ``order_service`` knows how the service is put together; the tests use the stub, the fake
publisher and the metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_producer.idempotency import RequestLedger
from coffee_orders_producer.metrics import ProducerMetrics
from coffee_orders_producer.order_stream import StreamBudget
from coffee_orders_producer.publisher import Publisher
from coffee_orders_producer.servicer import OrderServicer, add_order_service
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.unit.fake_publisher import FakePublisher

TOPIC = "coffee_orders"


@dataclass
class Served:
    stub: orders_pb2_grpc.OrderServiceStub
    channel: grpc.aio.Channel
    publisher: FakePublisher
    metrics: ProducerMetrics
    kafka: KafkaReachability = KafkaReachability.REACHABLE  # what the producer knows of Kafka

    def answered(self, code: str) -> float:
        """coffee_orders_placed_total{code=...}: orders answered with ``code`` so far."""
        value = self.metrics.registry.get_sample_value("coffee_orders_placed_total", {"code": code})
        return value or 0.0


@contextlib.asynccontextmanager
async def order_service(
    max_in_flight: int = 10_000, request_id_cache: int = 100_000
) -> AsyncIterator[Served]:
    publisher = FakePublisher()
    publisher.start()
    metrics = ProducerMetrics()
    servicer = OrderServicer(
        cast(Publisher, publisher),  # the same surface (tests/unit/test_fake_publisher.py)
        TOPIC,
        reachability=lambda: served.kafka,
        max_in_flight=max_in_flight,
        ledger=RequestLedger(request_id_cache),
        metrics=metrics,
        stream_budget=StreamBudget(2_000, 20_000),
    )
    server = grpc.aio.server()
    add_order_service(server, servicer)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = orders_pb2_grpc.OrderServiceStub(channel)
            served = Served(stub, channel, publisher, metrics)
            yield served
    finally:
        await server.stop(None)
        await publisher.close(0)


def order(
    customer_name: str = "John Doe",
    coffee_type: str = "Latte",
    request_id: str = "",
    wait_for: orders_pb2.WaitFor = orders_pb2.WAIT_FOR_UNSPECIFIED,
) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        customer_name=customer_name,
        coffee_type=coffee_type,
        request_id=request_id,
        wait_for=wait_for,
    )


def details(error: grpc.aio.AioRpcError) -> list[Message]:
    """The google.rpc.Status details of a failed call, unpacked to the messages they hold."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status: {error.code()} {error.details()}"
    found: list[Message] = []
    for packed in status.details:
        for kind in (error_details_pb2.BadRequest, orders_pb2.PlaceOrderResponse):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                found.append(message)
    return found
