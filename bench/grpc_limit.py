"""The gRPC limit: a grpc.aio server with the same contract whose handlers answer at once.

Same server scaffolding as the producer (options, health, reflection), no Kafka: PlaceOrder returns
a made-up confirmation, PlaceOrders one per order of each batch. Driven by the same load as the
producer, it shows what gRPC in Python costs on this machine before Kafka adds anything.

    python -m bench.grpc_limit --listen 127.0.0.1:50061
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common.grpc_server import create_server, serve_until_stopped

SERVICE_NAME = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name


def _confirmation(offset: int) -> orders_pb2.PlaceOrderResponse:
    reply = orders_pb2.PlaceOrderResponse(
        order_id=str(uuid.uuid4()), topic="coffee_orders", partition=0, offset=offset
    )
    reply.timestamp.GetCurrentTime()
    return reply


class AnswerAtOnce(orders_pb2_grpc.OrderServiceServicer):
    def __init__(self) -> None:
        self._offset = 0

    async def PlaceOrder(self, request: Any, context: Any) -> orders_pb2.PlaceOrderResponse:
        self._offset += 1
        return _confirmation(self._offset)

    async def PlaceOrders(
        self, request_iterator: Any, context: Any
    ) -> AsyncIterator[orders_pb2.PlaceOrdersResponse]:
        async for batch in request_iterator:
            results = []
            for _ in batch.orders:
                self._offset += 1
                results.append(orders_pb2.OrderResult(confirmed=_confirmation(self._offset)))
            yield orders_pb2.PlaceOrdersResponse(results=results)


async def serve(listen: str) -> None:
    def register(server: grpc.aio.Server) -> None:
        orders_pb2_grpc.add_OrderServiceServicer_to_server(AnswerAtOnce(), server)

    _, port, serving = await create_server(listen, register, [SERVICE_NAME])
    await serving.set(True)
    await serve_until_stopped("grpc-limit", listen, port, None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    asyncio.run(serve(parser.parse_args().listen))


if __name__ == "__main__":
    main()
