"""WAIT_FOR_PROCESSED: answer a confirmed order once the consumer group has processed it.

The order-state view is asked (and listened to) with the placement Kafka just confirmed, until
the order's state is final or the caller's deadline is near: the answer then comes just before
the deadline, as DEADLINE_EXCEEDED saying the order is placed, with the placement in the
details, rather than gRPC's bare DEADLINE_EXCEEDED at the deadline itself.
"""

from __future__ import annotations

import contextlib

import grpc
from coffee.orders.v1 import order_tracking_pb2, orders_pb2
from coffee_orders_common.order_state import identity
from coffee_orders_common.order_tracking import MAX_WATCHERS, OrderTracker, TrackingUnavailable
from coffee_orders_common.validation import Order

from .status_mapping import Failure

# Without a deadline a call waits this long at most; with one, it answers this share of the time
# left before it (at most _MARGIN_MAX_S), so that the answer reaches the caller in time.
WAIT_WITHOUT_DEADLINE_S = 300.0
_MARGIN_SHARE = 0.1
_MARGIN_MAX_S = 1.0


class ProcessingNotSeen(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


def wait_budget(time_remaining: float | None) -> float:
    if time_remaining is None:
        return WAIT_WITHOUT_DEADLINE_S
    return max(time_remaining - min(time_remaining * _MARGIN_SHARE, _MARGIN_MAX_S), 0.0)


async def processed(
    tracker: OrderTracker | None,
    confirmed: orders_pb2.PlaceOrderResponse,
    order: Order,
    budget_s: float,
) -> orders_pb2.PlaceOrderResponse:
    """``confirmed`` with its processing; ProcessingNotSeen when it was not processed in time
    or was dead-lettered (the failure carries ``confirmed`` in its details). Only the
    processing of this very ``order`` answers: a record that borrowed its order_id does not."""
    where = f"partition {confirmed.partition} offset {confirmed.offset}"
    if tracker is None:
        raise ProcessingNotSeen(
            Failure(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"order {confirmed.order_id} is placed ({where}), but order tracking is off "
                "here (COFFEE_ORDER_STATE=false): WAIT_FOR_PROCESSED cannot be told",
                (confirmed,),
            )
        )
    if tracker.waiting >= MAX_WATCHERS:
        raise ProcessingNotSeen(
            Failure(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"order {confirmed.order_id} is placed ({where}), but {MAX_WATCHERS} orders are "
                "awaited already; follow it with GetOrder",
                (confirmed,),
            )
        )
    placement = order_tracking_pb2.Placement(partition=confirmed.partition, offset=confirmed.offset)
    last: order_tracking_pb2.OrderStatus | None = None
    changes = tracker.changes(
        confirmed.order_id, placement, budget_s, identity(confirmed.order_id, order)
    )
    try:
        async with contextlib.aclosing(changes):
            async for status in changes:  # ends by itself after a final state
                last = status
    except TrackingUnavailable as exc:
        raise ProcessingNotSeen(
            Failure(
                grpc.StatusCode.UNAVAILABLE,
                f"order {confirmed.order_id} is placed ({where}), but {exc}; follow it with "
                "GetOrder",
                (confirmed,),
            )
        ) from None
    answer = orders_pb2.PlaceOrderResponse()
    answer.CopyFrom(confirmed)
    if last is not None:
        answer.processing.CopyFrom(last)
    if last is not None and last.state == order_tracking_pb2.ORDER_STATE_PROCESSED:
        return answer
    if last is not None and last.state == order_tracking_pb2.ORDER_STATE_DEAD_LETTERED:
        kind = last.error_kind
        raise ProcessingNotSeen(
            Failure(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"order {confirmed.order_id} is placed ({where}), but the consumer "
                f"dead-lettered it: {last.reason or kind}",
                (answer,),
            )
        )
    raise ProcessingNotSeen(
        Failure(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"order {confirmed.order_id} is placed ({where}), but its processing was not seen "
            "before the deadline; follow it with GetOrder or WatchOrder",
            (answer,),
        )
    )
