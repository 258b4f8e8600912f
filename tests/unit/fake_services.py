"""An in-process grpc.aio server with fixed answers for OrderService and OrderTrackingService.

Only for testing the client and the CLI without Kafka: it answers the way the contract says the
real services do (status codes, the PlaceOrderResponse in the google.rpc.Status details), and it
serves reflection so grpcurl can call it too. It runs on its own event loop in a thread, so
synchronous tests (and the CLI's own ``asyncio.run``) can call it.

PlaceOrder's answer is chosen by the customer's name: ``"Late"`` (the deadline passes before
processing), ``"Dead"`` (dead-lettered), ``"Old"`` (a producer that ignores wait_for), ``" "``
(INVALID_ARGUMENT); anyone else is confirmed, and processed when asked to wait for it. GetOrder
and WatchOrder know the order_ids in ``ORDERS``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from coffee.orders.v1 import (
    consumer_status_pb2,
    order_tracking_pb2,
    order_tracking_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection

TOPIC = "coffee_orders"
PROCESSED_ID = "6b1c6c0e-0f0e-4c57-9d0a-2f0a4d5b0001"
DEAD_ID = "6b1c6c0e-0f0e-4c57-9d0a-2f0a4d5b0002"
PENDING_ID = "6b1c6c0e-0f0e-4c57-9d0a-2f0a4d5b0003"
UNKNOWN_ID = "6b1c6c0e-0f0e-4c57-9d0a-2f0a4d5b0004"
HOSTILE_ID = "evil\x1b[2J\nid\u202e"  # a record-controlled order_id with terminal escapes
Context = grpc.aio.ServicerContext[Any, Any]
MEMBER = "coffee-orders-consumer-1 (member rdkafka-5f1e)"


def _status(
    order_id: str,
    state: order_tracking_pb2.OrderState,
    *,
    partition: int = 1,
    offset: int = 41,
    reason: str = "",
) -> order_tracking_pb2.OrderStatus:
    status = order_tracking_pb2.OrderStatus(
        order_id=order_id, state=state, topic=TOPIC, partition=partition, offset=offset
    )
    if state in (
        order_tracking_pb2.ORDER_STATE_PROCESSED,
        order_tracking_pb2.ORDER_STATE_DEAD_LETTERED,
    ):
        status.time.seconds, status.time.nanos = 1_765_000_000, 123_456_789
    if state == order_tracking_pb2.ORDER_STATE_PROCESSED:
        status.processed_by = MEMBER
    if state == order_tracking_pb2.ORDER_STATE_DEAD_LETTERED:
        status.error_kind = consumer_status_pb2.ERROR_KIND_NOT_JSON
        status.reason = reason or "value is not JSON"
    return status


def processed(order_id: str) -> order_tracking_pb2.OrderStatus:
    return _status(order_id, order_tracking_pb2.ORDER_STATE_PROCESSED)


def dead_lettered(order_id: str, reason: str = "") -> order_tracking_pb2.OrderStatus:
    return _status(order_id, order_tracking_pb2.ORDER_STATE_DEAD_LETTERED, reason=reason)


def pending(order_id: str) -> order_tracking_pb2.OrderStatus:
    return _status(order_id, order_tracking_pb2.ORDER_STATE_PENDING)


def not_found(order_id: str) -> order_tracking_pb2.OrderStatus:
    return order_tracking_pb2.OrderStatus(
        order_id=order_id, state=order_tracking_pb2.ORDER_STATE_NOT_FOUND
    )


# Each order's states, as WatchOrder streams them (GetOrder answers the last one).
ORDERS: dict[str, list[order_tracking_pb2.OrderStatus]] = {
    PROCESSED_ID: [pending(PROCESSED_ID), processed(PROCESSED_ID)],
    DEAD_ID: [pending(DEAD_ID), dead_lettered(DEAD_ID)],
    PENDING_ID: [pending(PENDING_ID)],  # never final: WatchOrder runs into its deadline
    HOSTILE_ID: [dead_lettered(HOSTILE_ID, reason="bad\r\nreason \x07\u2028x\\y")],
}


def placed_reply(
    order_id: str, status: order_tracking_pb2.OrderStatus | None = None
) -> orders_pb2.PlaceOrderResponse:
    reply = orders_pb2.PlaceOrderResponse(order_id=order_id, topic=TOPIC, partition=1, offset=41)
    reply.timestamp.FromMilliseconds(1_765_000_000_042)
    if status is not None:
        reply.processing.CopyFrom(status)
    return reply


def _details(code: grpc.StatusCode, message: str, *details: object) -> tuple[tuple[str, bytes]]:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)  # type: ignore[arg-type]
        status.details.append(packed)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class FakeOrders(orders_pb2_grpc.OrderServiceServicer):
    async def PlaceOrder(
        self, request: orders_pb2.PlaceOrderRequest, context: Context
    ) -> orders_pb2.PlaceOrderResponse:
        order_id = request.request_id or PROCESSED_ID
        waits = request.wait_for == orders_pb2.WAIT_FOR_PROCESSED
        if not request.customer_name.strip():
            violation = error_details_pb2.BadRequest.FieldViolation(
                field="customer_name", description="customer_name must not be blank"
            )
            message = "invalid order: customer_name must not be blank"
            code = grpc.StatusCode.INVALID_ARGUMENT
            bad = error_details_pb2.BadRequest(field_violations=[violation])
            await context.abort(code, message, _details(code, message, bad))
        if request.customer_name == "Old" or not waits:
            return placed_reply(order_id)
        if request.customer_name == "Late":
            code = grpc.StatusCode.DEADLINE_EXCEEDED
            message = "order placed, but its processing not yet seen before the deadline"
            reply = placed_reply(order_id, pending(order_id))
            await context.abort(code, message, _details(code, message, reply))
        if request.customer_name == "Dead":
            code = grpc.StatusCode.FAILED_PRECONDITION
            message = "order dead-lettered: NOT_JSON: value is not JSON"
            reply = placed_reply(order_id, dead_lettered(order_id))
            await context.abort(code, message, _details(code, message, reply))
        return placed_reply(order_id, processed(order_id))


class FakeTracking(order_tracking_pb2_grpc.OrderTrackingServiceServicer):
    async def GetOrder(
        self, request: order_tracking_pb2.GetOrderRequest, context: Context
    ) -> order_tracking_pb2.GetOrderResponse:
        if not request.order_id.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order_id must not be blank")
        states = ORDERS.get(request.order_id)
        if states is None or (
            states[-1].state == order_tracking_pb2.ORDER_STATE_PENDING
            and not request.HasField("placement")
        ):
            return order_tracking_pb2.GetOrderResponse(order=not_found(request.order_id))
        return order_tracking_pb2.GetOrderResponse(order=states[-1])

    async def WatchOrder(
        self, request: order_tracking_pb2.WatchOrderRequest, context: Context
    ) -> AsyncIterator[order_tracking_pb2.WatchOrderResponse]:
        states = ORDERS.get(request.order_id, [not_found(request.order_id)])
        for state in states:
            yield order_tracking_pb2.WatchOrderResponse(order=state)
        if states[-1].state in (
            order_tracking_pb2.ORDER_STATE_PROCESSED,
            order_tracking_pb2.ORDER_STATE_DEAD_LETTERED,
        ):
            return
        remaining = context.time_remaining()
        await asyncio.sleep(max(0.0, (remaining or 0.5) - 0.2))  # as the server: just before
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no final state before the deadline")


@contextmanager
def fake_services() -> Iterator[str]:
    """Serve both fakes on 127.0.0.1, a free port; yields the address."""
    loop = asyncio.new_event_loop()
    started: list[int] = []
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        server = grpc.aio.server()
        orders_pb2_grpc.add_OrderServiceServicer_to_server(FakeOrders(), server)
        order_tracking_pb2_grpc.add_OrderTrackingServiceServicer_to_server(FakeTracking(), server)
        names = (
            orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name,
            order_tracking_pb2.DESCRIPTOR.services_by_name["OrderTrackingService"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        started.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        ready.set()
        try:
            await stop.wait()
        finally:
            await server.stop(None)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the fake server did not start"
    try:
        yield f"127.0.0.1:{started[0]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()
