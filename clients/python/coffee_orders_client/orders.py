"""Typed clients for both services, sync and asyncio, over the generated stubs.

``place_order`` always sends a request_id (a new UUID when none is given) and uses the service
config in ``service_config.json``: UNAVAILABLE is retried with the same request_id, so a retried
order is never placed twice. ``place_orders`` sends many orders over one PlaceOrders stream in
batches and returns one outcome per order, in order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from coffee.orders.v1 import (
    consumer_status_pb2,
    consumer_status_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from .service_config import CHANNEL_OPTIONS

ConsumerStatus = consumer_status_pb2.GetStatusResponse
ConsumerError = consumer_status_pb2.ConsumerError
WatchErrorsRequest = consumer_status_pb2.WatchErrorsRequest
WatchErrorsReply = consumer_status_pb2.WatchErrorsResponse


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    topic: str
    partition: int
    offset: int
    timestamp: datetime

    def to_proto(self) -> orders_pb2.PlaceOrderResponse:
        """The PlaceOrder reply this was read from (Kafka's millisecond timestamp survives)."""
        reply = orders_pb2.PlaceOrderResponse(
            order_id=self.order_id, topic=self.topic, partition=self.partition, offset=self.offset
        )
        reply.timestamp.FromDatetime(self.timestamp)
        return reply


@dataclass
class RejectedOrder(Exception):
    """A non-OK answer; ``field_violations`` maps field -> problem for INVALID_ARGUMENT."""

    code: grpc.StatusCode
    message: str
    field_violations: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


@dataclass(frozen=True)
class NewOrder:
    """One order for ``place_orders``; give a request_id to make a retry of it safe."""

    customer_name: str
    coffee_type: str
    request_id: str | None = None


MAX_BATCH = 1000  # orders per PlaceOrdersRequest the producer accepts


def _batches(
    orders: Iterable[NewOrder], batch_size: int
) -> Iterator[orders_pb2.PlaceOrdersRequest]:
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
    batch: list[orders_pb2.PlaceOrderRequest] = []
    for new in orders:
        batch.append(_request(new.customer_name, new.coffee_type, new.request_id))
        if len(batch) == batch_size:
            yield orders_pb2.PlaceOrdersRequest(orders=batch)
            batch = []
    if batch:
        yield orders_pb2.PlaceOrdersRequest(orders=batch)


def _outcomes(reply: orders_pb2.PlaceOrdersResponse) -> list[PlacedOrder | RejectedOrder]:
    outcomes: list[PlacedOrder | RejectedOrder] = []
    for result in reply.results:
        if result.HasField("confirmed"):
            outcomes.append(_placed(result.confirmed))
        else:
            code = _CODES.get(result.error.code, grpc.StatusCode.UNKNOWN)
            outcomes.append(RejectedOrder(code, result.error.message))
    return outcomes


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _request(
    customer_name: str, coffee_type: str, request_id: str | None
) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        customer_name=customer_name,
        coffee_type=coffee_type,
        request_id=request_id if request_id is not None else str(uuid.uuid4()),
    )


def _placed(reply: orders_pb2.PlaceOrderResponse) -> PlacedOrder:
    return PlacedOrder(
        order_id=reply.order_id,
        topic=reply.topic,
        partition=reply.partition,
        offset=reply.offset,
        timestamp=reply.timestamp.ToDatetime(tzinfo=UTC).astimezone(),
    )


def _rejected(
    code: grpc.StatusCode, message: str, status: status_pb2.Status | None
) -> RejectedOrder:
    violations: dict[str, str] = {}
    details: list[Any] = list(status.details) if status is not None else []
    for detail in details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations.update({v.field: v.description for v in bad_request.field_violations})
    return RejectedOrder(code, message, violations)


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
    """Blocking client: orders go to the producer, status questions to the consumer."""

    def __init__(
        self,
        orders_target: str = "localhost:50051",
        status_target: str = "localhost:50052",
        credentials: grpc.ChannelCredentials | None = None,
    ):
        self._orders_channel = _channel(orders_target, credentials)
        self._status_channel = _channel(status_target, credentials)
        self._orders = orders_pb2_grpc.OrderServiceStub(self._orders_channel)
        self._status = consumer_status_pb2_grpc.ConsumerStatusServiceStub(self._status_channel)

    def __enter__(self) -> CoffeeOrdersClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._orders_channel.close()
        self._status_channel.close()

    def place_order(
        self,
        customer_name: str,
        coffee_type: str,
        request_id: str | None = None,
        timeout: float = 10.0,
    ) -> PlacedOrder:
        """Place one order; raises RejectedOrder on any non-OK status."""
        try:
            reply = self._orders.PlaceOrder(
                _request(customer_name, coffee_type, request_id), timeout=timeout
            )
        except grpc.RpcError as error:
            call = error if isinstance(error, grpc.Call) else None
            if call is None:
                raise RejectedOrder(grpc.StatusCode.UNKNOWN, str(error)) from None
            status = rpc_status.from_call(call)
            raise _rejected(call.code(), call.details() or "", status) from None
        return _placed(reply)

    def place_orders(
        self, orders: Iterable[NewOrder], batch_size: int = 500, timeout: float | None = None
    ) -> list[PlacedOrder | RejectedOrder]:
        """Place many orders over one PlaceOrders stream; one outcome per order, in order.

        Raises RejectedOrder if the stream itself fails; orders answered before that are in
        Kafka, so retry with the same request_ids.
        """
        outcomes: list[PlacedOrder | RejectedOrder] = []
        try:
            for reply in self._orders.PlaceOrders(_batches(orders, batch_size), timeout=timeout):
                outcomes.extend(_outcomes(reply))
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


class AsyncCoffeeOrdersClient:
    """The asyncio twin of CoffeeOrdersClient."""

    def __init__(
        self,
        orders_target: str = "localhost:50051",
        status_target: str = "localhost:50052",
        credentials: grpc.ChannelCredentials | None = None,
    ):
        self._orders_channel = _aio_channel(orders_target, credentials)
        self._status_channel = _aio_channel(status_target, credentials)
        self._orders = orders_pb2_grpc.OrderServiceStub(self._orders_channel)
        self._status = consumer_status_pb2_grpc.ConsumerStatusServiceStub(self._status_channel)

    async def __aenter__(self) -> AsyncCoffeeOrdersClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._orders_channel.close(None)
        await self._status_channel.close(None)

    async def place_order(
        self,
        customer_name: str,
        coffee_type: str,
        request_id: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
    ) -> PlacedOrder:
        call = self._orders.PlaceOrder(
            _request(customer_name, coffee_type, request_id), timeout=timeout
        )
        try:
            reply = await call
        except grpc.aio.AioRpcError as error:
            status = await rpc_status.aio.from_call(call)  # type: ignore[attr-defined]
            raise _rejected(error.code(), error.details() or "", status) from None
        return _placed(reply)

    async def place_orders(
        self,
        orders: Iterable[NewOrder],
        batch_size: int = 500,
        timeout: float | None = None,  # noqa: ASYNC109 (a gRPC deadline, sent to the server)
    ) -> list[PlacedOrder | RejectedOrder]:
        """The asyncio form of CoffeeOrdersClient.place_orders."""

        async def requests() -> AsyncIterator[orders_pb2.PlaceOrdersRequest]:
            for batch in _batches(orders, batch_size):
                yield batch

        outcomes: list[PlacedOrder | RejectedOrder] = []
        try:
            async for reply in self._orders.PlaceOrders(requests(), timeout=timeout):
                outcomes.extend(_outcomes(reply))
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
