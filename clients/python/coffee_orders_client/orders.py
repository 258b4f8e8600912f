"""``OrderClient``: place orders with a deadline and get typed answers or typed errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    topic: str
    partition: int
    offset: int
    timestamp: datetime


@dataclass(frozen=True)
class RejectedOrder(Exception):
    """The service answered with a non-OK status; ``field_violations`` for INVALID_ARGUMENT."""

    code: grpc.StatusCode
    message: str
    field_violations: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class OrderClient:
    def __init__(self, address: str, credentials: grpc.ChannelCredentials | None = None):
        self._channel = (
            grpc.secure_channel(address, credentials)
            if credentials is not None
            else grpc.insecure_channel(address)
        )
        self._stub = orders_pb2_grpc.OrderServiceStub(self._channel)

    def __enter__(self) -> OrderClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def place(
        self,
        customer_name: str,
        coffee_type: str,
        request_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> PlacedOrder:
        """Place one order; raises RejectedOrder on any non-OK status.

        Without a request_id one is generated, so the caller can retry this exact order safely
        by passing the same id again.
        """
        request = orders_pb2.PlaceOrderRequest(
            customer_name=customer_name,
            coffee_type=coffee_type,
            request_id=request_id if request_id is not None else str(uuid.uuid4()),
        )
        try:
            reply = self._stub.PlaceOrder(request, timeout=timeout_s)
        except grpc.RpcError as error:
            raise _rejected(error) from None
        return PlacedOrder(
            order_id=reply.order_id,
            topic=reply.topic,
            partition=reply.partition,
            offset=reply.offset,
            timestamp=reply.timestamp.ToDatetime().astimezone(),
        )


def _rejected(error: grpc.RpcError) -> RejectedOrder:
    call = error if isinstance(error, grpc.Call) else None
    code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
    message = (call.details() if call is not None else None) or str(error)
    violations: dict[str, str] = {}
    status = rpc_status.from_call(call) if call is not None else None
    details: list[Any] = list(status.details) if status is not None else []
    for detail in details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations.update({v.field: v.description for v in bad_request.field_violations})
    return RejectedOrder(code, message, violations)
