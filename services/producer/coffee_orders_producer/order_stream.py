"""coffee.orders.v1.OrderService/PlaceOrders: batches of orders on one bidirectional stream.

A reader task admits each batch as it arrives (the same admission as PlaceOrder) and queues the
batch's outcomes; the handler answers the batches strictly in order, each once every order of it
has an outcome. The reader stops reading, so HTTP/2 flow control slows the caller down instead
of orders failing or piling up, while:

- the stream holds as many unanswered orders as it may (``StreamBudget.per_stream``): admitted
  but not yet written back, of any kind: waiting for Kafka, confirmed, rejected, ledger repeats;
  a caller that does not read its answers stops here;
- all streams together hold as many as they may (``StreamBudget.shared``);
- the in-flight limit shared with PlaceOrder has no room for the whole batch. A batch larger
  than that limit is admitted in parts of at most the limit, each waiting for room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from coffee.orders.v1 import orders_pb2
from coffee_orders_common import tracing
from coffee_orders_common.validation import Order

from . import status_mapping
from .admission import Reservation, Slots
from .calls import Context, Rejected, abort, incoming_traceparent, validated
from .processing_wait import ProcessingNotSeen, processed, wait_budget
from .publisher import DeliveryFailed
from .status_mapping import Failure

if TYPE_CHECKING:
    from .servicer import OrderServicer

log = logging.getLogger("coffee_orders.producer")
MAX_ORDERS_PER_REQUEST = 1000
# One order of a batch: its pending reply, or why it was refused at once.
PendingResult = asyncio.Future[orders_pb2.PlaceOrderResponse] | Failure
# A batch's outcomes, and for each order that asked to be answered once processed, the order.
Batch = tuple[list[PendingResult], list[Order | None]]


class StreamBudget:
    """How many orders PlaceOrders streams may hold unanswered: each, and all together."""

    def __init__(self, per_stream: int, all_streams: int):
        if not MAX_ORDERS_PER_REQUEST <= per_stream <= all_streams:
            raise ValueError("need a full batch <= per stream <= all streams")
        self.per_stream = per_stream
        self.shared = Slots(all_streams)


class _StreamUnanswered:
    """The unanswered orders of one stream, counted against its own bound and the shared one."""

    def __init__(self, budget: StreamBudget):
        self._own = Slots(budget.per_stream)
        self._shared = budget.shared
        self._shared_held = 0

    async def take(self, count: int) -> None:
        await self._own.reserve(count)
        try:
            await self._shared.reserve(count)
        except BaseException:
            self._own.release(count)
            raise
        self._shared_held += count

    def give_back(self, count: int) -> None:
        self._own.release(count)
        self._shared.release(count)
        self._shared_held -= count

    def give_back_all(self) -> None:
        """The stream ended: what it still held is free for the others."""
        self._shared.release(self._shared_held)
        self._shared_held = 0


async def place_orders(
    servicer: OrderServicer,
    requests: AsyncIterator[orders_pb2.PlaceOrdersRequest | None],
    context: Context,
) -> AsyncIterator[orders_pb2.PlaceOrdersResponse]:
    """OrderServicer.PlaceOrders: see the module docstring."""
    unanswered = _StreamUnanswered(servicer.stream_budget)
    # A batch's outcomes (bounded by ``unanswered``); a Failure ends the stream once earlier answers
    # went; None: the caller is done.
    batches: asyncio.Queue[Batch | Failure | None] = asyncio.Queue()
    reader = asyncio.create_task(
        _read(servicer, unanswered, requests, incoming_traceparent(context), batches)
    )
    try:
        while (batch := await batches.get()) is not None:
            if isinstance(batch, Failure):
                await abort(context, batch)
                return
            fates, waits = batch
            await _settled(fates)
            if any(order is not None for order in waits):
                fates = await _processing(servicer, fates, waits, context.time_remaining())
            yield orders_pb2.PlaceOrdersResponse(results=_results(servicer, fates))
            unanswered.give_back(len(fates))  # written: the caller is reading
        await reader  # surfaces an unexpected error of the reader
    finally:
        reader.cancel()
        unanswered.give_back_all()


async def _read(
    servicer: OrderServicer,
    unanswered: _StreamUnanswered,
    requests: AsyncIterator[orders_pb2.PlaceOrdersRequest | None],
    incoming: str | None,
    batches: asyncio.Queue[Batch | Failure | None],
) -> None:
    try:
        async for request in requests:
            problem = _batch_problem(request)
            if problem is not None:
                batches.put_nowait(problem)
                return
            assert request is not None
            await unanswered.take(len(request.orders))
            traced = tracing.recording()
            with tracing.span("PlaceOrders", incoming, "SERVER", recorded=traced) as traceparent:
                fates = await _admit_batch(servicer, request.orders, traceparent, traced)
                waits = [_awaited(order) for order in request.orders]
                batches.put_nowait((fates, waits))
    except Exception as exc:
        log.exception("PlaceOrders stream failed unexpectedly")
        batches.put_nowait(status_mapping.unexpected(exc))
        return
    batches.put_nowait(None)


async def _admit_batch(
    servicer: OrderServicer,
    orders: Sequence[orders_pb2.PlaceOrderRequest],
    traceparent: str | None,
    traced: bool,
) -> list[PendingResult]:
    """Admit every order, each part of at most the in-flight limit once there is room for it."""
    in_flight = servicer.in_flight
    outcomes: list[PendingResult] = []
    for start in range(0, len(orders), in_flight.limit):
        part = orders[start : start + in_flight.limit]
        with await in_flight.reserve(len(part)) as reservation:
            outcomes.extend(
                _admit(servicer, order, traceparent, reservation, traced) for order in part
            )
    return outcomes


async def _settled(fates: list[PendingResult]) -> None:
    """Wait until every outcome of a batch is settled.

    One outcome at a time, the earliest unsettled: by the time it settles, most of the others
    have (Kafka confirms a partition's orders together), so a batch costs a few waits instead of
    a callback on each of its orders. asyncio.wait never cancels what it waits for: an outcome
    may be shared with a repeat of its request_id on another call.
    """
    for fate in fates:
        if isinstance(fate, asyncio.Future) and not fate.done():
            await asyncio.wait((fate,))


def _batch_problem(request: orders_pb2.PlaceOrdersRequest | None) -> Failure | None:
    if request is None:
        return status_mapping.malformed_request("coffee.orders.v1.PlaceOrdersRequest")
    if not 1 <= len(request.orders) <= MAX_ORDERS_PER_REQUEST:
        return status_mapping.bad_batch_size(len(request.orders), MAX_ORDERS_PER_REQUEST)
    return None


def _admit(
    servicer: OrderServicer,
    order: orders_pb2.PlaceOrderRequest,
    traceparent: str | None,
    reservation: Reservation,
    traced: bool,
) -> PendingResult:
    try:
        return servicer.admit(order, traceparent, reservation, traced)
    except Rejected as rejected:
        return rejected.failure


def _awaited(request: orders_pb2.PlaceOrderRequest) -> Order | None:
    """The order when it asks to be answered once processed (and is valid: else its fate is
    a refusal already)."""
    if request.wait_for != orders_pb2.WAIT_FOR_PROCESSED:
        return None
    try:
        return validated(request)
    except Rejected:
        return None


async def _processing(
    servicer: OrderServicer,
    fates: list[PendingResult],
    waits: list[Order | None],
    remaining: float | None,
) -> list[PendingResult]:
    """The batch's outcomes once the orders that asked for it are processed (or not in time)."""
    budget = wait_budget(remaining)

    async def settle(fate: PendingResult, order: Order | None) -> PendingResult:
        if order is None or not isinstance(fate, asyncio.Future) or fate.exception() is not None:
            return fate
        answered: asyncio.Future[orders_pb2.PlaceOrderResponse] = (
            asyncio.get_running_loop().create_future()
        )
        try:
            answered.set_result(await processed(servicer.tracker, fate.result(), order, budget))
        except ProcessingNotSeen as not_seen:
            return not_seen.failure
        return answered

    return list(await asyncio.gather(*(settle(f, w) for f, w in zip(fates, waits, strict=True))))


def _results(servicer: OrderServicer, batch: list[PendingResult]) -> list[orders_pb2.OrderResult]:
    """Each order's result, in order; counted once per status code, not once per order."""
    results = []
    codes: dict[str, int] = {}
    for outcome in batch:
        result, code = _result(servicer, outcome)
        results.append(result)
        codes[code] = codes.get(code, 0) + 1
    for code, count in codes.items():
        servicer.count_order(code, count)
    return results


def _result(servicer: OrderServicer, outcome: PendingResult) -> tuple[orders_pb2.OrderResult, str]:
    if isinstance(outcome, asyncio.Future):
        error = outcome.exception()
        if error is None:
            return orders_pb2.OrderResult(confirmed=outcome.result()), "OK"
        failure = (
            servicer.kafka_failure(error)
            if isinstance(error, DeliveryFailed)
            else status_mapping.unexpected(error)
        )
    else:
        failure = outcome
    error_result = orders_pb2.OrderError(code=failure.code.value[0], message=failure.message)
    for detail in failure.details:  # WAIT_FOR_PROCESSED: where the order was placed
        if isinstance(detail, orders_pb2.PlaceOrderResponse):
            error_result.placed.CopyFrom(detail)
    return orders_pb2.OrderResult(error=error_result), failure.code.name
