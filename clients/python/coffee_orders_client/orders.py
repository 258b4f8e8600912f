"""Typed clients for both services, sync and asyncio, over the generated stubs.

``place_order`` always sends a request_id (a new UUID when none is given) and uses the service
config in ``service_config.json``: UNAVAILABLE is retried with the same request_id, so a retried
order is never placed twice. ``place_orders`` sends many orders over one PlaceOrders stream in
batches and returns one outcome per order, in order.

``wait_for=WaitFor.PROCESSED`` (or ``"processed"``) makes PlaceOrder answer once the consumer
group processed the order: the reply's ``processing`` says when, by whom and which record. When
Kafka has the order but its processing was not seen in time, or the order was dead-lettered, the
call raises ``OrderNotProcessedInTime`` or ``OrderDeadLettered``: both carry ``placed``, where
Kafka stored it, to follow the order with ``get_order`` or ``watch_order`` (OrderTrackingService,
served by the producer and by the consumer, with the same answers).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from coffee.orders.v1 import (
    consumer_status_pb2,
    consumer_status_pb2_grpc,
    order_tracking_pb2,
    order_tracking_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from .service_config import CHANNEL_OPTIONS
from .tracking import OrderState, OrderStatus, Placement, WaitFor, order_status

ConsumerStatus = consumer_status_pb2.GetStatusResponse
ConsumerError = consumer_status_pb2.ConsumerError
WatchErrorsRequest = consumer_status_pb2.WatchErrorsRequest
WatchErrorsReply = consumer_status_pb2.WatchErrorsResponse


@dataclass(frozen=True)
class PlacedOrder:
    """Where Kafka stored an order; with WaitFor.PROCESSED, ``processing`` too."""

    order_id: str
    topic: str
    partition: int
    offset: int
    timestamp: datetime
    processing: OrderStatus | None = None

    @property
    def placement(self) -> Placement:
        """For ``get_order`` and ``watch_order``: PENDING rather than NOT_FOUND until processed."""
        return Placement(self.partition, self.offset)

    def to_proto(self) -> orders_pb2.PlaceOrderResponse:
        """The PlaceOrder reply this was read from (Kafka's millisecond timestamp survives)."""
        reply = orders_pb2.PlaceOrderResponse(
            order_id=self.order_id, topic=self.topic, partition=self.partition, offset=self.offset
        )
        reply.timestamp.FromDatetime(self.timestamp)
        if self.processing is not None:
            reply.processing.CopyFrom(self.processing.to_proto())
        return reply


@dataclass
class RejectedOrder(Exception):
    """A non-OK answer; ``field_violations`` maps field -> problem for INVALID_ARGUMENT."""

    code: grpc.StatusCode
    message: str
    field_violations: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


@dataclass
class PlacedButNotProcessed(RejectedOrder):
    """PlaceOrder with WaitFor.PROCESSED did not answer "processed", yet Kafka has the order:
    ``placed`` says where (order_id, partition, offset). Follow it with ``get_order`` or
    ``watch_order``; never place it again under a new request_id.

    Raised as itself when the producer answered without the order's processing (a producer
    older than WaitFor); the two cases below have classes of their own.
    """

    placed: PlacedOrder = field(kw_only=True)

    @property
    def order_id(self) -> str:
        return self.placed.order_id

    @property
    def partition(self) -> int:
        return self.placed.partition

    @property
    def offset(self) -> int:
        return self.placed.offset

    @property
    def placement(self) -> Placement:
        return self.placed.placement

    @property
    def processing(self) -> OrderStatus | None:
        """The order's processing as last seen, when the producer said."""
        return self.placed.processing


@dataclass
class OrderNotProcessedInTime(PlacedButNotProcessed):
    """DEADLINE_EXCEEDED: the order is placed (``placed``), its processing not seen before the
    deadline. It may still be processed: watch it (``watch_order(e.order_id, e.placement)``)."""


@dataclass
class OrderDeadLettered(PlacedButNotProcessed):
    """FAILED_PRECONDITION: the consumer rejected the order's record and copied it to the
    dead-letter topic; ``processing`` has ``error_kind`` and ``reason``. Final."""


@dataclass
class WatchDeadlineExceeded(RejectedOrder):
    """``watch_order`` reached its deadline before the order reached a final state; ``last`` is
    the last state it streamed (None if none came)."""

    last: OrderStatus | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class NewOrder:
    """One order for ``place_orders``; give a request_id to make a retry of it safe."""

    customer_name: str
    coffee_type: str
    request_id: str | None = None


MAX_BATCH = 1000  # orders per PlaceOrdersRequest the producer accepts


def _batches(
    orders: Iterable[NewOrder], batch_size: int, wait_for: WaitFor = WaitFor.CONFIRMED
) -> Iterator[orders_pb2.PlaceOrdersRequest]:
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
    batch: list[orders_pb2.PlaceOrderRequest] = []
    for new in orders:
        batch.append(_request(new.customer_name, new.coffee_type, new.request_id, wait_for))
        if len(batch) == batch_size:
            yield orders_pb2.PlaceOrdersRequest(orders=batch)
            batch = []
    if batch:
        yield orders_pb2.PlaceOrdersRequest(orders=batch)


def _outcomes(
    reply: orders_pb2.PlaceOrdersResponse, wait_for: WaitFor = WaitFor.CONFIRMED
) -> list[PlacedOrder | RejectedOrder]:
    outcomes: list[PlacedOrder | RejectedOrder] = []
    for result in reply.results:
        if result.HasField("confirmed"):
            placed = _placed(result.confirmed)
            not_processed = _not_processed(placed, wait_for)
            outcomes.append(placed if not_processed is None else not_processed)
        else:
            code = _CODES.get(result.error.code, grpc.StatusCode.UNKNOWN)
            placed_but = _placed(result.error.placed) if result.error.HasField("placed") else None
            outcomes.append(_error(code, result.error.message, {}, placed_but))
    return outcomes


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _wait_for(wait_for: WaitFor | str) -> WaitFor:
    """``WaitFor.PROCESSED`` or ``"processed"``; ValueError for anything else."""
    return WaitFor(wait_for)


def _request(
    customer_name: str,
    coffee_type: str,
    request_id: str | None,
    wait_for: WaitFor = WaitFor.CONFIRMED,
) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        customer_name=customer_name,
        coffee_type=coffee_type,
        request_id=request_id if request_id is not None else str(uuid.uuid4()),
        wait_for=wait_for.to_proto(),
    )


def _placed(reply: orders_pb2.PlaceOrderResponse) -> PlacedOrder:
    return PlacedOrder(
        order_id=reply.order_id,
        topic=reply.topic,
        partition=reply.partition,
        offset=reply.offset,
        timestamp=reply.timestamp.ToDatetime(tzinfo=UTC).astimezone(),
        processing=order_status(reply.processing) if reply.HasField("processing") else None,
    )


def _not_processed(placed: PlacedOrder, wait_for: WaitFor) -> PlacedButNotProcessed | None:
    """With WaitFor.PROCESSED, an OK reply that does not say PROCESSED: the error to raise."""
    if wait_for is not WaitFor.PROCESSED:
        return None
    processing = placed.processing
    if processing is None:
        return PlacedButNotProcessed(
            grpc.StatusCode.UNIMPLEMENTED,
            "the producer answered once Kafka confirmed the order, without its processing: "
            "it does not support wait_for (older than the contract that added it)",
            placed=placed,
        )
    if processing.state is OrderState.PROCESSED:
        return None
    if processing.state is OrderState.DEAD_LETTERED:
        return OrderDeadLettered(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"order dead-lettered: {processing.reason}",
            placed=placed,
        )
    return PlacedButNotProcessed(
        grpc.StatusCode.UNKNOWN,
        f"the producer answered with the order {processing.state.name}, not PROCESSED",
        placed=placed,
    )


def _error(
    code: grpc.StatusCode,
    message: str,
    violations: dict[str, str],
    placed: PlacedOrder | None,
) -> RejectedOrder:
    """The exception for a non-OK answer; ``placed`` when the answer said where Kafka has it."""
    if placed is None:
        return RejectedOrder(code, message, violations)
    state = placed.processing.state if placed.processing is not None else None
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return OrderNotProcessedInTime(code, message, violations, placed=placed)
    if code is grpc.StatusCode.FAILED_PRECONDITION and state is OrderState.DEAD_LETTERED:
        return OrderDeadLettered(code, message, violations, placed=placed)
    return PlacedButNotProcessed(code, message, violations, placed=placed)


def _rejected(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None
) -> RejectedOrder:
    """The exception for a non-OK answer, from its google.rpc.Status details: BadRequest field
    violations, and the PlaceOrderResponse of an order placed but not processed."""
    violations: dict[str, str] = {}
    placed: PlacedOrder | None = None
    details: list[Any] = list(status.details) if status is not None else []
    for detail in details:
        bad_request = error_details_pb2.BadRequest()
        reply = orders_pb2.PlaceOrderResponse()
        if detail.Unpack(bad_request):
            violations.update({v.field: v.description for v in bad_request.field_violations})
        elif detail.Unpack(reply):
            placed = _placed(reply)
    return _error(code, message, violations, placed)


def _status_details(call: grpc.Call) -> status_pb2.Status | None:
    """The call's google.rpc.Status (grpc-status-details-bin), if it sent a valid one."""
    try:
        status: status_pb2.Status | None = rpc_status.from_call(call)
    except ValueError:  # details whose code or message differ from the call's own
        return None
    return status


def _sync_rejected(error: grpc.RpcError) -> RejectedOrder:
    call = error if isinstance(error, grpc.Call) else None
    if call is None:
        return RejectedOrder(grpc.StatusCode.UNKNOWN, str(error))
    return _rejected(call.code(), call.details() or "", _status_details(call))


async def _aio_rejected(
    error: grpc.aio.AioRpcError, call: grpc.aio.Call | None = None
) -> RejectedOrder:
    status: status_pb2.Status | None = None
    if call is not None:
        try:
            status = await rpc_status.aio.from_call(call)  # type: ignore[attr-defined]
        except ValueError:
            status = None
    return _rejected(error.code(), error.details() or "", status)


def _get_request(order_id: str, placement: Placement | None) -> order_tracking_pb2.GetOrderRequest:
    return order_tracking_pb2.GetOrderRequest(
        order_id=order_id, placement=placement.to_proto() if placement is not None else None
    )


def _watch_request(
    order_id: str, placement: Placement | None
) -> order_tracking_pb2.WatchOrderRequest:
    return order_tracking_pb2.WatchOrderRequest(
        order_id=order_id, placement=placement.to_proto() if placement is not None else None
    )


def _watch_error(rejected: RejectedOrder, last: OrderStatus | None) -> RejectedOrder:
    if rejected.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return WatchDeadlineExceeded(
            rejected.code, rejected.message, rejected.field_violations, last=last
        )
    return rejected


def tls_credentials(
    ca: str | None = None, cert: str | None = None, key: str | None = None
) -> grpc.ChannelCredentials:
    """TLS to the services: ``ca`` verifies the server (system roots when None); ``cert`` and
    ``key`` are this client's certificate for mTLS."""
    if bool(cert) != bool(key):
        raise ValueError("a client certificate and its key go together")
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


def _aio_channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


class CoffeeOrdersClient:
    """Blocking client: orders go to the producer, status questions to the consumer.

    Order tracking (``get_order``, ``watch_order``) goes to ``tracking_target``, the producer's
    address unless given: both services serve OrderTrackingService with the same answers.
    """

    def __init__(
        self,
        orders_target: str = "localhost:50051",
        status_target: str = "localhost:50052",
        credentials: grpc.ChannelCredentials | None = None,
        tracking_target: str | None = None,
    ):
        self._orders_channel = _channel(orders_target, credentials)
        self._status_channel = _channel(status_target, credentials)
        self._tracking_channel: grpc.Channel | None = None
        tracking_channel = self._orders_channel
        if tracking_target == status_target:
            tracking_channel = self._status_channel
        elif tracking_target not in (None, orders_target):
            tracking_channel = self._tracking_channel = _channel(tracking_target, credentials)
        self._orders = orders_pb2_grpc.OrderServiceStub(self._orders_channel)
        self._status = consumer_status_pb2_grpc.ConsumerStatusServiceStub(self._status_channel)
        self._tracking = order_tracking_pb2_grpc.OrderTrackingServiceStub(tracking_channel)

    def __enter__(self) -> CoffeeOrdersClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._orders_channel.close()
        self._status_channel.close()
        if self._tracking_channel is not None:
            self._tracking_channel.close()

    def place_order(
        self,
        customer_name: str,
        coffee_type: str,
        request_id: str | None = None,
        timeout: float = 10.0,
        wait_for: WaitFor | str = WaitFor.CONFIRMED,
    ) -> PlacedOrder:
        """Place one order; raises RejectedOrder on any non-OK status.

        With ``wait_for="processed"`` it returns once the consumer group processed the order
        (``processing.state`` is PROCESSED), or raises OrderNotProcessedInTime (the deadline
        came first) or OrderDeadLettered, each with ``placed``: the order is in Kafka.
        """
        waiting = _wait_for(wait_for)
        try:
            reply = self._orders.PlaceOrder(
                _request(customer_name, coffee_type, request_id, waiting), timeout=timeout
            )
        except grpc.RpcError as error:
            raise _sync_rejected(error) from None
        placed = _placed(reply)
        not_processed = _not_processed(placed, waiting)
        if not_processed is not None:
            raise not_processed
        return placed

    def place_orders(
        self,
        orders: Iterable[NewOrder],
        batch_size: int = 500,
        timeout: float | None = None,
        wait_for: WaitFor | str = WaitFor.CONFIRMED,
    ) -> list[PlacedOrder | RejectedOrder]:
        """Place many orders over one PlaceOrders stream; one outcome per order, in order.

        Raises RejectedOrder if the stream itself fails; orders answered before that are in
        Kafka, so retry with the same request_ids. With ``wait_for="processed"`` an outcome is
        a PlacedOrder once processed, else one of place_order's errors.
        """
        waiting = _wait_for(wait_for)
        outcomes: list[PlacedOrder | RejectedOrder] = []
        try:
            batches = _batches(orders, batch_size, waiting)
            for reply in self._orders.PlaceOrders(batches, timeout=timeout):
                outcomes.extend(_outcomes(reply, waiting))
        except grpc.RpcError as error:
            call = error if isinstance(error, grpc.Call) else None
            code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
            raise RejectedOrder(code, (call.details() if call else str(error)) or "") from None
        return outcomes

    def status(self, timeout: float = 5.0) -> ConsumerStatus:
        reply: ConsumerStatus = self._status.GetStatus(
            consumer_status_pb2.GetStatusRequest(), timeout=timeout
        )
        return reply

    def watch_errors(self) -> Iterator[ConsumerError]:
        """Each new consumer error as it happens, until the daemon stops or the caller breaks."""
        for item in self.watch_errors_with_dropped():
            yield item.error

    def watch_errors_with_dropped(self) -> Iterator[WatchErrorsReply]:
        """Like watch_errors, with ``dropped``: errors missed just before each one (the
        daemon keeps a bounded queue per watcher and drops the oldest for a slow reader)."""
        yield from self._status.WatchErrors(consumer_status_pb2.WatchErrorsRequest())

    def get_order(
        self, order_id: str, placement: Placement | None = None, timeout: float = 5.0
    ) -> OrderStatus:
        """The order's state now (NOT_FOUND is a state, not an error); with ``placement``
        (``placed.placement``), an order not processed yet is PENDING rather than NOT_FOUND.
        Raises RejectedOrder on any non-OK status."""
        try:
            reply = self._tracking.GetOrder(_get_request(order_id, placement), timeout=timeout)
        except grpc.RpcError as error:
            raise _sync_rejected(error) from None
        return order_status(reply.order)

    def watch_order(
        self, order_id: str, placement: Placement | None = None, timeout: float | None = 60.0
    ) -> Generator[OrderStatus, None, None]:
        """The order's state now, then each change; ends after a final state (PROCESSED or
        DEAD_LETTERED). Raises WatchDeadlineExceeded when ``timeout`` seconds pass first (None:
        no deadline), RejectedOrder on any other non-OK status. ``close()`` (or leaving a
        ``for`` loop over it, once collected) cancels the call."""
        call = self._tracking.WatchOrder(_watch_request(order_id, placement), timeout=timeout)
        last: OrderStatus | None = None
        try:
            for reply in call:
                last = order_status(reply.order)
                yield last
        except grpc.RpcError as error:
            raise _watch_error(_sync_rejected(error), last) from None
        finally:
            call.cancel()  # the caller stopped early: end the stream (no-op once it ended)


class AsyncCoffeeOrdersClient:
    """The asyncio twin of CoffeeOrdersClient."""

    def __init__(
        self,
        orders_target: str = "localhost:50051",
        status_target: str = "localhost:50052",
        credentials: grpc.ChannelCredentials | None = None,
        tracking_target: str | None = None,
    ):
        self._orders_channel = _aio_channel(orders_target, credentials)
        self._status_channel = _aio_channel(status_target, credentials)
        self._tracking_channel: grpc.aio.Channel | None = None
        tracking_channel = self._orders_channel
        if tracking_target == status_target:
            tracking_channel = self._status_channel
        elif tracking_target not in (None, orders_target):
            tracking_channel = self._tracking_channel = _aio_channel(tracking_target, credentials)
        self._orders = orders_pb2_grpc.OrderServiceStub(self._orders_channel)
        self._status = consumer_status_pb2_grpc.ConsumerStatusServiceStub(self._status_channel)
        self._tracking = order_tracking_pb2_grpc.OrderTrackingServiceStub(tracking_channel)

    async def __aenter__(self) -> AsyncCoffeeOrdersClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._orders_channel.close(None)
        await self._status_channel.close(None)
        if self._tracking_channel is not None:
            await self._tracking_channel.close(None)

    async def place_order(
        self,
        customer_name: str,
        coffee_type: str,
        request_id: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
        wait_for: WaitFor | str = WaitFor.CONFIRMED,
    ) -> PlacedOrder:
        """The asyncio form of CoffeeOrdersClient.place_order."""
        waiting = _wait_for(wait_for)
        call = self._orders.PlaceOrder(
            _request(customer_name, coffee_type, request_id, waiting), timeout=timeout
        )
        try:
            reply = await call
        except grpc.aio.AioRpcError as error:
            raise await _aio_rejected(error, call) from None
        placed = _placed(reply)
        not_processed = _not_processed(placed, waiting)
        if not_processed is not None:
            raise not_processed
        return placed

    async def place_orders(
        self,
        orders: Iterable[NewOrder],
        batch_size: int = 500,
        timeout: float | None = None,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
        wait_for: WaitFor | str = WaitFor.CONFIRMED,
    ) -> list[PlacedOrder | RejectedOrder]:
        """The asyncio form of CoffeeOrdersClient.place_orders."""
        waiting = _wait_for(wait_for)

        async def requests() -> AsyncIterator[orders_pb2.PlaceOrdersRequest]:
            for batch in _batches(orders, batch_size, waiting):
                yield batch

        outcomes: list[PlacedOrder | RejectedOrder] = []
        try:
            async for reply in self._orders.PlaceOrders(requests(), timeout=timeout):
                outcomes.extend(_outcomes(reply, waiting))
        except grpc.aio.AioRpcError as error:
            raise RejectedOrder(error.code(), error.details() or "") from None
        return outcomes

    async def status(self, timeout: float = 5.0) -> ConsumerStatus:  # noqa: ASYNC109
        reply: ConsumerStatus = await self._status.GetStatus(
            consumer_status_pb2.GetStatusRequest(), timeout=timeout
        )
        return reply

    async def watch_errors(self) -> AsyncGenerator[ConsumerError, None]:
        async for item in self.watch_errors_with_dropped():
            yield item.error

    async def watch_errors_with_dropped(self) -> AsyncGenerator[WatchErrorsReply, None]:
        stream = self._status.WatchErrors(consumer_status_pb2.WatchErrorsRequest())
        async for item in stream:
            yield item

    def watch_errors_call(self) -> grpc.aio.UnaryStreamCall[WatchErrorsRequest, WatchErrorsReply]:
        """The WatchErrors call itself, for callers that need more than the errors: ``await
        call.initial_metadata()`` returns once the daemon has subscribed this caller (every later
        error reaches it); ``async for reply in call`` gives each WatchErrorsResponse."""
        call: grpc.aio.UnaryStreamCall[WatchErrorsRequest, WatchErrorsReply] = (
            self._status.WatchErrors(WatchErrorsRequest())
        )
        return call

    async def get_order(
        self,
        order_id: str,
        placement: Placement | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
    ) -> OrderStatus:
        """The asyncio form of CoffeeOrdersClient.get_order."""
        call = self._tracking.GetOrder(_get_request(order_id, placement), timeout=timeout)
        try:
            reply = await call
        except grpc.aio.AioRpcError as error:
            raise await _aio_rejected(error, call) from None
        return order_status(reply.order)

    async def watch_order(
        self,
        order_id: str,
        placement: Placement | None = None,
        timeout: float | None = 60.0,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
    ) -> AsyncGenerator[OrderStatus, None]:
        """The asyncio form of CoffeeOrdersClient.watch_order (an async generator)."""
        call = self._tracking.WatchOrder(_watch_request(order_id, placement), timeout=timeout)
        last: OrderStatus | None = None
        try:
            async for reply in call:
                last = order_status(reply.order)
                yield last
        except grpc.aio.AioRpcError as error:
            raise _watch_error(await _aio_rejected(error, call), last) from None
        finally:
            call.cancel()  # the caller stopped early: end the stream (no-op once it ended)
