"""What PlaceOrder and PlaceOrders share about a call: its trace parent, the order's validation,
and how a refusal ends the call."""

from __future__ import annotations

from typing import Any

import grpc
from coffee.orders.v1 import orders_pb2
from coffee_orders_common import wire
from coffee_orders_common.validation import (
    MAX_REQUEST_ID_CHARS,
    InvalidOrder,
    Order,
    check_text_field,
    validate_order,
)
from google.rpc import status_pb2
from grpc_status import rpc_status

from . import status_mapping
from .status_mapping import Failure

Context = grpc.aio.ServicerContext[Any, Any]


class Rejected(Exception):
    """The order is refused before reaching Kafka, with ``failure`` as its answer."""

    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


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


async def abort(context: Context, failure: Failure) -> None:
    """End the call with ``failure`` as a rich status (google.rpc.Status with its details)."""
    status = status_pb2.Status(code=failure.code.value[0], message=failure.message)
    for detail in failure.details:
        status.details.add().Pack(detail)
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)
