"""coffee.orders.v1.OrderService: validate, publish, wait for Kafka, answer.

PlaceOrder and each order of a PlaceOrders batch go through ``OrderServicer.admit``; PlaceOrders'
stream mechanics (reading ahead, its bounds, answers in order) are in ``order_stream``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common import kafka_spans, tracing, wire
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_common.order_tracking import OrderTracker
from coffee_orders_common.tolerant import add_tolerant_service
from coffee_orders_common.validation import Order
from confluent_kafka import KafkaError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from . import order_stream, status_mapping
from .admission import InFlight, NoRoom, Slot, SlotSource
from .calls import Context, Rejected, abort, incoming_traceparent, validated
from .idempotency import RequestLedger, RequestReused
from .metrics import ProducerMetrics
from .order_stream import MAX_ORDERS_PER_REQUEST, StreamBudget
from .processing_wait import ProcessingNotSeen, processed, wait_budget
from .publisher import DeliveryFailed, Publisher, QueueFull
from .status_mapping import Failure

log = logging.getLogger("coffee_orders.producer")
_SERVICE = orders_pb2.DESCRIPTOR.services_by_name["OrderService"]
SERVICE_NAME = _SERVICE.full_name


def _response(order_id: str, message: Message) -> orders_pb2.PlaceOrderResponse:
    timestamp = Timestamp()
    _, millis = message.timestamp()
    if millis and millis > 0:
        timestamp.FromMilliseconds(millis)
    else:
        timestamp.GetCurrentTime()
    offset = message.offset()
    return orders_pb2.PlaceOrderResponse(
        order_id=order_id,
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=offset if offset is not None and offset >= 0 else -1,  # acks=0: no offset
        timestamp=timestamp,
    )


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        publisher: Publisher,
        topic: str,
        reachability: Callable[[], KafkaReachability],
        max_in_flight: int,
        ledger: RequestLedger,
        metrics: ProducerMetrics,
        tracker: OrderTracker | None = None,
        stream_budget: StreamBudget | None = None,
    ):
        """``tracker``: the order state, for WAIT_FOR_PROCESSED (None: tracking is off);
        ``stream_budget``: PlaceOrders' bounds (None: one full batch per stream, ten in all)."""
        self._publisher = publisher
        self.tracker = tracker
        self.topic = topic
        self._reachability = reachability
        self.in_flight = InFlight(max_in_flight)  # shared by PlaceOrder and PlaceOrders
        self._ledger = ledger
        self.closing = False
        self.metrics = metrics
        self.stream_budget = stream_budget or StreamBudget(
            MAX_ORDERS_PER_REQUEST, 10 * MAX_ORDERS_PER_REQUEST
        )

    async def PlaceOrder(
        self, request: orders_pb2.PlaceOrderRequest | None, context: Context
    ) -> orders_pb2.PlaceOrderResponse:
        started = time.monotonic()
        try:
            if request is None:
                raise Rejected(status_mapping.malformed_request())
            response = await self._place(request, context)
        except Rejected as rejected:
            failure = rejected.failure
        except Exception as exc:  # never let an exception reach the caller as UNKNOWN
            log.exception("PlaceOrder failed unexpectedly")
            failure = status_mapping.unexpected(exc)
        else:
            self._count("OK", started)
            return response
        self._count(failure.code.name, started)
        await abort(context, failure)
        raise AssertionError("unreachable: abort raises")

    async def PlaceOrders(
        self,
        requests: AsyncIterator[orders_pb2.PlaceOrdersRequest | None],
        context: Context,
    ) -> AsyncIterator[orders_pb2.PlaceOrdersResponse]:
        """Batches of orders on one stream, one answer per batch, in order (see order_stream)."""
        async for response in order_stream.place_orders(self, requests, context):
            yield response

    def _count(self, code: str, started: float) -> None:
        self.count_order(code)
        self.metrics.place_order_seconds.observe(time.monotonic() - started)

    async def _place(
        self, request: orders_pb2.PlaceOrderRequest, context: Context
    ) -> orders_pb2.PlaceOrderResponse:
        traced = tracing.recording()
        incoming = incoming_traceparent(context)
        with tracing.span("PlaceOrder", incoming, "SERVER", recorded=traced) as traceparent:
            outcome = self.admit(request, traceparent, self.in_flight, traced)
        response = await self._wait(outcome, context)
        if request.wait_for == orders_pb2.WAIT_FOR_PROCESSED:
            try:
                response = await processed(
                    self.tracker,
                    response,
                    validated(request),
                    wait_budget(context.time_remaining()),
                )
            except ProcessingNotSeen as not_seen:
                raise Rejected(not_seen.failure) from None
        log.debug(  # per order: DEBUG, so the INFO log stays quiet at thousands of orders/s
            "order confirmed by Kafka",
            extra={
                "fields": {
                    "order_id": response.order_id,
                    "partition": response.partition,
                    "offset": response.offset,
                }
            },
        )
        return response

    def admit(
        self,
        request: orders_pb2.PlaceOrderRequest,
        traceparent: str | None,
        slots: SlotSource,
        traced: bool,
    ) -> asyncio.Future[orders_pb2.PlaceOrderResponse]:
        """Validate, deduplicate and publish one order; the future settles with its answer.

        Raises Rejected when the order is refused before reaching Kafka. An order that is not
        a repeat takes its in-flight slot from ``slots``: ``self.in_flight`` (PlaceOrder, refused
        when there is no room) or the reservation its batch waited for (PlaceOrders).
        ``traced``: ``tracing.recording()``, asked once per call or batch.
        """
        if self.closing:
            raise Rejected(status_mapping.shutting_down())
        order = validated(request)
        request_id = request.request_id.strip()
        if request_id:
            try:
                earlier = self._ledger.find(request_id, order)
            except RequestReused:
                raise Rejected(status_mapping.request_id_reused(request_id)) from None
            if earlier is not None:
                return earlier
        try:
            slot = slots.take()
        except NoRoom:
            raise Rejected(status_mapping.too_many_in_flight(self.in_flight.limit)) from None
        with slot:  # given back here unless the order went to Kafka
            self._check_kafka()
            outcome: asyncio.Future[orders_pb2.PlaceOrderResponse] = (
                asyncio.get_running_loop().create_future()
            )
            order_id = wire.order_id_for(request_id)
            self._publish(order, order_id, traceparent, outcome, slot, traced)
        if request_id:
            self._ledger.remember(request_id, order, outcome)
        return outcome

    def count_order(self, code: str, count: int = 1) -> None:
        self.metrics.count_order(code, count)

    def _check_kafka(self) -> None:
        failure = status_mapping.for_reachability(self._reachability(), self.topic)
        if failure is not None:
            raise Rejected(failure)

    def _publish(
        self,
        order: Order,
        order_id: str,
        traceparent: str | None,
        outcome: asyncio.Future[orders_pb2.PlaceOrderResponse],
        slot: Slot,
        traced: bool,
    ) -> None:
        """Hand the order to Kafka; ``outcome`` settles with the answer on its delivery report,
        which gives ``slot`` back."""
        queued = time.monotonic()
        delivery_seconds = self.metrics.delivery_seconds
        span = kafka_spans.send_span(self.topic, order_id, traceparent, traced)

        def delivered(error: KafkaError | None, message: Message) -> None:
            slot.release()
            delivery_seconds.observe(time.monotonic() - queued)
            failed = None if error is None else error.name()
            kafka_spans.delivered(span, message.partition(), message.offset(), failed)
            if outcome.done():
                return
            if error is None:
                outcome.set_result(_response(order_id, message))
                return
            outcome.set_exception(DeliveryFailed(error))
            # Marked as read: nobody may be waiting any more (the caller left), and a callback
            # on every order to do this later cost a loop round per order.
            outcome.exception()
            log.warning(
                "Kafka did not confirm an order",
                extra={"fields": {"order_id": order_id, "error": error.name()}},
            )

        try:
            self._publisher.publish(
                self.topic,
                order_id.encode(),
                wire.encode_order(order),
                wire.order_headers(order_id, span.traceparent),
                delivered,
            )
        except QueueFull:
            kafka_spans.delivered(span, None, None, "QueueFull")
            raise Rejected(status_mapping.queue_full()) from None
        except DeliveryFailed as failed:
            kafka_spans.delivered(span, None, None, failed.error.name())
            raise Rejected(self.kafka_failure(failed)) from None
        slot.hand_over()  # to ``delivered``

    def kafka_failure(self, failed: DeliveryFailed) -> Failure:
        """The status for an order Kafka did not take: one mapping for every path."""
        return status_mapping.for_kafka_error(failed.error, self.topic)

    async def _wait(
        self,
        outcome: asyncio.Future[orders_pb2.PlaceOrderResponse],
        context: Context,
    ) -> orders_pb2.PlaceOrderResponse:
        """Wait for Kafka, but not past the caller's deadline; the delivery itself goes on.

        ``outcome`` may be shared by repeats of one request_id: asyncio.wait never cancels what
        it waits for, neither at the timeout nor when this call is cancelled.
        """
        done, _ = await asyncio.wait((outcome,), timeout=context.time_remaining())
        if not done:
            raise Rejected(status_mapping.deadline_passed())
        try:
            return outcome.result()
        except DeliveryFailed as failed:
            raise Rejected(self.kafka_failure(failed)) from None


def add_order_service(server: grpc.aio.Server, servicer: OrderServicer) -> None:
    """Like the generated add_OrderServiceServicer_to_server, with parsers that answer
    malformed bytes clearly (INVALID_ARGUMENT) instead of failing the call."""
    add_tolerant_service(server, _SERVICE, servicer)
