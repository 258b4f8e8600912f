"""coffee.orders.v1.OrderService/PlaceOrders: batches of orders on one bidirectional stream.

A reader task admits each batch as it arrives (the same admission as PlaceOrder) and queues the
batch's outcomes; the handler answers the batches strictly in order, each once every order of it
has an outcome. While the in-flight limit is reached the reader stops reading, so HTTP/2 flow
control slows the caller down instead of orders failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from coffee.orders.v1 import orders_pb2
from coffee_orders_common import tracing

from . import status_mapping
from .publisher import DeliveryFailed
from .servicer import Context, OrderServicer, Rejected, abort, incoming_traceparent
from .status_mapping import Failure

log = logging.getLogger("coffee_orders.producer")
MAX_ORDERS_PER_REQUEST = 1000
Outcome = asyncio.Future[orders_pb2.PlaceOrderResponse] | Failure


async def place_orders(
    servicer: OrderServicer,
    requests: AsyncIterator[orders_pb2.PlaceOrdersRequest | None],
    context: Context,
) -> AsyncIterator[orders_pb2.PlaceOrdersResponse]:
    # a batch's outcomes; a Failure ends the stream once earlier answers went; None: caller done
    batches: asyncio.Queue[list[Outcome] | Failure | None] = asyncio.Queue()
    reader = asyncio.create_task(_read(servicer, requests, incoming_traceparent(context), batches))
    try:
        while (batch := await batches.get()) is not None:
            if isinstance(batch, Failure):
                await abort(context, batch)
                return
            waiting = [o for o in batch if isinstance(o, asyncio.Future) and not o.done()]
            if waiting:  # one wait for the batch; asyncio.wait never cancels the outcomes
                await asyncio.wait(waiting)
            yield orders_pb2.PlaceOrdersResponse(results=[_result(servicer, o) for o in batch])
        await reader  # surfaces an unexpected error of the reader
    finally:
        reader.cancel()


async def _read(
    servicer: OrderServicer,
    requests: AsyncIterator[orders_pb2.PlaceOrdersRequest | None],
    incoming: str | None,
    batches: asyncio.Queue[list[Outcome] | Failure | None],
) -> None:
    try:
        async for request in requests:
            problem = _batch_problem(request)
            if problem is not None:
                batches.put_nowait(problem)
                return
            assert request is not None
            await servicer.room_for_more()
            with tracing.span("PlaceOrders", incoming, "SERVER") as traceparent:
                batches.put_nowait([_admit(servicer, o, traceparent) for o in request.orders])
    except Exception as exc:
        log.exception("PlaceOrders stream failed unexpectedly")
        batches.put_nowait(status_mapping.unexpected(exc))
        return
    batches.put_nowait(None)


def _batch_problem(request: orders_pb2.PlaceOrdersRequest | None) -> Failure | None:
    if request is None:
        return status_mapping.malformed_request("coffee.orders.v1.PlaceOrdersRequest")
    if not 1 <= len(request.orders) <= MAX_ORDERS_PER_REQUEST:
        return status_mapping.bad_batch_size(len(request.orders), MAX_ORDERS_PER_REQUEST)
    return None


def _admit(
    servicer: OrderServicer, order: orders_pb2.PlaceOrderRequest, traceparent: str | None
) -> Outcome:
    try:
        return servicer.admit(order, traceparent, enforce_limit=False)
    except Rejected as rejected:
        return rejected.failure


def _result(servicer: OrderServicer, outcome: Outcome) -> orders_pb2.OrderResult:
    if isinstance(outcome, asyncio.Future):
        error = outcome.exception()
        if error is None:
            servicer.count_order("OK")
            return orders_pb2.OrderResult(confirmed=outcome.result())
        failure = (
            servicer.kafka_failure(error)
            if isinstance(error, DeliveryFailed)
            else status_mapping.unexpected(error)
        )
    else:
        failure = outcome
    servicer.count_order(failure.code.name)
    return orders_pb2.OrderResult(
        error=orders_pb2.OrderError(code=failure.code.value[0], message=failure.message)
    )
