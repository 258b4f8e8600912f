"""Register OrderService on a server, with parsers that answer malformed bytes clearly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from coffee.orders.v1 import orders_pb2
from coffee_orders_common.tolerant import tolerant

from .order_stream import StreamBudget, place_orders
from .servicer import Context, OrderServicer


def register_order_service(
    server: grpc.aio.Server, servicer: OrderServicer, budget: StreamBudget
) -> None:
    """Like the generated add_OrderServiceServicer_to_server, with the tolerant parsers."""

    async def stream(  # grpc.aio serves a stream from an async generator *function*
        requests: AsyncIterator[orders_pb2.PlaceOrdersRequest | None], context: Context
    ) -> AsyncIterator[orders_pb2.PlaceOrdersResponse]:
        async for response in place_orders(servicer, budget, requests, context):
            yield response

    handlers = {
        "PlaceOrder": grpc.unary_unary_rpc_method_handler(
            servicer.PlaceOrder,
            request_deserializer=tolerant(orders_pb2.PlaceOrderRequest),
            response_serializer=orders_pb2.PlaceOrderResponse.SerializeToString,
        ),
        "PlaceOrders": grpc.stream_stream_rpc_method_handler(
            stream,
            request_deserializer=tolerant(orders_pb2.PlaceOrdersRequest),
            response_serializer=orders_pb2.PlaceOrdersResponse.SerializeToString,
        ),
    }
    service = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
