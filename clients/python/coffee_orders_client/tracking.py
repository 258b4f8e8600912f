"""What happened to an order after Kafka confirmed it: the types of OrderTrackingService.

``OrderStatus`` is the typed form of the contract's ``coffee.orders.v1.OrderStatus``: where the
order stands (``OrderState``), when and by which consumer it was processed, which record was
processed or dead-lettered and why. ``Placement`` is where PlaceOrder said Kafka stored it;
passed to GetOrder or WatchOrder, it lets the server tell "not processed yet" (PENDING) from
"unknown" (NOT_FOUND). ``WaitFor`` says when PlaceOrder answers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from coffee.orders.v1 import consumer_status_pb2, order_tracking_pb2, orders_pb2


class OrderState(enum.Enum):
    """Where an order stands; the values are the contract's enum numbers."""

    UNSPECIFIED = order_tracking_pb2.ORDER_STATE_UNSPECIFIED  # also: a state this client lacks
    NOT_FOUND = order_tracking_pb2.ORDER_STATE_NOT_FOUND
    PENDING = order_tracking_pb2.ORDER_STATE_PENDING
    PROCESSED = order_tracking_pb2.ORDER_STATE_PROCESSED
    DEAD_LETTERED = order_tracking_pb2.ORDER_STATE_DEAD_LETTERED

    @property
    def final(self) -> bool:
        """PROCESSED and DEAD_LETTERED never change again."""
        return self in (OrderState.PROCESSED, OrderState.DEAD_LETTERED)


class WaitFor(enum.Enum):
    """When PlaceOrder answers: once Kafka confirmed the order, or once the group processed it."""

    CONFIRMED = "confirmed"
    PROCESSED = "processed"

    def to_proto(self) -> orders_pb2.WaitFor:
        # CONFIRMED is the contract's default: sent as the unset value, so the request is the one
        # every producer, old or new, reads the same way.
        if self is WaitFor.PROCESSED:
            return orders_pb2.WAIT_FOR_PROCESSED
        return orders_pb2.WAIT_FOR_UNSPECIFIED


@dataclass(frozen=True)
class Placement:
    """Where Kafka stored an order: its partition and offset in the orders topic."""

    partition: int
    offset: int

    def to_proto(self) -> order_tracking_pb2.Placement:
        return order_tracking_pb2.Placement(partition=self.partition, offset=self.offset)


@dataclass(frozen=True)
class OrderStatus:
    """What is known of one order (GetOrder, WatchOrder, PlaceOrder with WaitFor.PROCESSED).

    ``time`` is None unless the order was processed or dead-lettered. ``topic``, ``partition``
    and ``offset`` are the record that was processed or dead-lettered (for PENDING, the
    placement asked about). ``error_kind`` (an ``ErrorKind`` name such as ``"NOT_JSON"``) and
    ``reason`` are set for DEAD_LETTERED only.
    """

    order_id: str
    state: OrderState
    time: datetime | None
    processed_by: str
    topic: str
    partition: int
    offset: int
    error_kind: str
    reason: str
    _proto: order_tracking_pb2.OrderStatus | None = field(default=None, repr=False, compare=False)

    @property
    def final(self) -> bool:
        return self.state.final

    @property
    def placement(self) -> Placement:
        return Placement(self.partition, self.offset)

    def to_proto(self) -> order_tracking_pb2.OrderStatus:
        """The contract's message this was read from, exactly (``--json`` prints it)."""
        if self._proto is not None:
            copy = order_tracking_pb2.OrderStatus()
            copy.CopyFrom(self._proto)
            return copy
        message = order_tracking_pb2.OrderStatus(
            order_id=self.order_id,
            state=self.state.value,
            processed_by=self.processed_by,
            topic=self.topic,
            partition=self.partition,
            offset=self.offset,
            error_kind=_kind_number(self.error_kind),
            reason=self.reason,
        )
        if self.time is not None:
            message.time.FromDatetime(self.time)
        return message


_STATES = {state.value: state for state in OrderState}


def order_status(message: order_tracking_pb2.OrderStatus) -> OrderStatus:
    """The typed form of a reply's OrderStatus (an enum number this client lacks: UNSPECIFIED)."""
    kind = _kind_name(message.error_kind)
    copy = order_tracking_pb2.OrderStatus()
    copy.CopyFrom(message)
    return OrderStatus(
        order_id=message.order_id,
        state=_STATES.get(message.state, OrderState.UNSPECIFIED),
        time=message.time.ToDatetime(tzinfo=UTC).astimezone() if message.HasField("time") else None,
        processed_by=message.processed_by,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        error_kind=kind,
        reason=message.reason,
        _proto=copy,
    )


def _kind_number(name: str) -> consumer_status_pb2.ErrorKind:
    number: int
    if not name:
        number = consumer_status_pb2.ERROR_KIND_UNSPECIFIED
    elif name.isdigit():  # a kind this client lacks, kept as its number
        number = int(name)
    else:
        number = consumer_status_pb2.ErrorKind.Value(f"ERROR_KIND_{name}")
    return cast(consumer_status_pb2.ErrorKind, number)


def _kind_name(number: int) -> str:
    """``"NOT_JSON"``; ``""`` for none; the number itself for a kind this client lacks."""
    if number == consumer_status_pb2.ERROR_KIND_UNSPECIFIED:
        return ""
    if number in consumer_status_pb2.ErrorKind.values():
        return consumer_status_pb2.ErrorKind.Name(number).removeprefix("ERROR_KIND_")
    return str(number)
