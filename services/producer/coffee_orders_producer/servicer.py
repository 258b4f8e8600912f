"""coffee.orders.v1.OrderService: validate, publish, wait for Kafka, answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common import kafka_spans, tracing, wire
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_common.order_tracking import OrderTracker
from coffee_orders_common.validation import (
    MAX_REQUEST_ID_CHARS,
    InvalidOrder,
    Order,
    check_text_field,
    validate_order,
)
from confluent_kafka import KafkaError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import status_pb2
from grpc_status import rpc_status

from . import status_mapping
from .idempotency import RequestLedger, RequestReused
from .metrics import ProducerMetrics
from .processing_wait import ProcessingNotSeen, processed, wait_budget
from .publisher import DeliveryFailed, Publisher, QueueFull
from .slots import Slots
from .status_mapping import Failure

log = logging.getLogger("coffee_orders.producer")
Context = grpc.aio.ServicerContext[Any, Any]


class Rejected(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


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


def incoming_traceparent(context: Context) -> str | None:
    """The caller's W3C traceparent from the call's metadata, if any."""
    for key, value in context.invocation_metadata() or ():
        if key == wire.TRACEPARENT_HEADER and isinstance(value, str):
            return value
    return None


def validated(request: orders_pb2.PlaceOrderRequest) -> Order:
    violations = []
    try:
        order = validate_order(request.customer_name, request.coffee_type)
    except InvalidOrder as invalid:
        violations.extend(invalid.violations)
    _, request_id_problem = check_text_field(
        "request_id", request.request_id, MAX_REQUEST_ID_CHARS, required=False
    )
    if request_id_problem is not None:
        violations.append(request_id_problem)
    if violations:
        raise Rejected(status_mapping.invalid_order(violations))
    return order


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
    ):
        """``tracker``: the order state, for WAIT_FOR_PROCESSED (None: tracking is off)."""
        self._publisher = publisher
        self.tracker = tracker
        self.topic = topic
        self._reachability = reachability
        self.in_flight_slots = Slots(max_in_flight)  # shared by PlaceOrder and PlaceOrders
        self._ledger = ledger
        self.closing = False
        self.metrics = metrics

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

    def _count(self, code: str, started: float) -> None:
        self.count_order(code)
        self.metrics.place_order_seconds.observe(time.monotonic() - started)

    async def _place(
        self, request: orders_pb2.PlaceOrderRequest, context: Context
    ) -> orders_pb2.PlaceOrderResponse:
        with tracing.span("PlaceOrder", incoming_traceparent(context), "SERVER") as traceparent:
            outcome = self.admit(request, traceparent, reserved=False)
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
        self, request: orders_pb2.PlaceOrderRequest, traceparent: str | None, reserved: bool
    ) -> asyncio.Future[orders_pb2.PlaceOrderResponse]:
        """Validate, deduplicate and publish one order; the future settles with its answer.

        Raises Rejected when the order is refused before reaching Kafka. ``reserved`` says
        whether the caller already holds an in-flight slot for this order (PlaceOrders, which
        waited for room; the slot is given back if the order does not go to Kafka) or a full
        in-flight limit refuses it (PlaceOrder).
        """
        published = False
        try:
            outcome, published = self._admit(request, traceparent, reserved)
            return outcome
        finally:
            if reserved and not published:
                self.in_flight_slots.release()

    def _admit(
        self, request: orders_pb2.PlaceOrderRequest, traceparent: str | None, reserved: bool
    ) -> tuple[asyncio.Future[orders_pb2.PlaceOrderResponse], bool]:
        """The order's outcome, and whether it went to Kafka (not answered from the ledger)."""
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
                return earlier, False
        if not reserved and self.in_flight_slots.full():
            raise Rejected(status_mapping.too_many_in_flight(self.in_flight_slots.limit))
        self._check_kafka()
        order_id = wire.order_id_for(request_id)
        outcome: asyncio.Future[orders_pb2.PlaceOrderResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._publish(order, order_id, traceparent, outcome, reserved)
        if request_id:
            self._ledger.remember(request_id, order, outcome)
        return outcome, True

    def count_order(self, code: str, count: int = 1) -> None:
        self.metrics.count_order(code, count)

    def _check_kafka(self) -> None:
        reachability = self._reachability()
        if reachability is KafkaReachability.TOPIC_MISSING:
            raise Rejected(status_mapping.topic_missing(self.topic))
        if reachability is KafkaReachability.UNREACHABLE:
            raise Rejected(status_mapping.kafka_unreachable())
        if reachability is KafkaReachability.AUTH_FAILED:
            raise Rejected(status_mapping.kafka_auth_failed())
        if reachability is KafkaReachability.BROKER_UNTRUSTED:
            raise Rejected(status_mapping.kafka_untrusted())

    def _publish(
        self,
        order: Order,
        order_id: str,
        traceparent: str | None,
        outcome: asyncio.Future[orders_pb2.PlaceOrderResponse],
        reserved: bool,
    ) -> None:
        """Hand the order to Kafka; ``outcome`` settles with the answer on its delivery report.

        The order holds an in-flight slot (taken here unless ``reserved``) until that report.
        """
        queued = time.monotonic()
        delivery_seconds = self.metrics.delivery_seconds
        span = kafka_spans.send_span(self.topic, order_id, traceparent)

        def delivered(error: KafkaError | None, message: Message) -> None:
            self.in_flight_slots.release()
            delivery_seconds.observe(time.monotonic() - queued)
            failed = None if error is None else error.name()
            kafka_spans.delivered(span, message.partition(), message.offset(), failed)
            if outcome.done():
                return
            if error is None:
                outcome.set_result(_response(order_id, message))
                return
            outcome.set_exception(DeliveryFailed(error))
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
        if not reserved:
            self.in_flight_slots.take()
        # Nobody may be waiting any more (the caller left); do not warn about an unread exception.
        outcome.add_done_callback(_mark_retrieved)

    @property
    def in_flight(self) -> int:
        return self.in_flight_slots.taken

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


def _mark_retrieved(outcome: asyncio.Future[orders_pb2.PlaceOrderResponse]) -> None:
    if not outcome.cancelled():
        outcome.exception()


async def abort(context: Context, failure: Failure) -> None:
    """End the call with ``failure`` as a rich status (google.rpc.Status with its details)."""
    status = status_pb2.Status(code=failure.code.value[0], message=failure.message)
    for detail in failure.details:
        status.details.add().Pack(detail)
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)
