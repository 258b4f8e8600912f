"""coffee.orders.v1.OrderTrackingService, and the wait behind PlaceOrder's WAIT_FOR_PROCESSED.

Both services serve it from their ``OrderStateView`` of the order-state topic, so every instance
answers alike: PROCESSED and DEAD_LETTERED come from the topic; PENDING needs the placement the
caller got from PlaceOrder and the group's committed offset of that partition (asked of Kafka),
below or at the order's offset; NOT_FOUND is everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee.orders.v1 import order_tracking_pb2 as pb
from coffee.orders.v1 import order_tracking_pb2_grpc
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from google.protobuf.timestamp_pb2 import Timestamp

from .characters import is_token
from .kafka_config import admin_config
from .order_state import State, StateEvent
from .order_state_view import OrderStateView, view_config
from .settings import ServiceSettings
from .tolerant import add_tolerant_service

Context = grpc.aio.ServicerContext[Any, Any]
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["OrderTrackingService"].full_name
MAX_ORDER_ID_CHARS = 128
MAX_WATCHERS = 10_000  # WatchOrder streams and WAIT_FOR_PROCESSED waits at once, per process
_RESTORE_WAIT_S = 5.0  # a call that comes while the view restores waits this long at most
_PENDING_RECHECK_S = 2.0  # a PENDING order's group offset is asked again this often
_ADMIN_TIMEOUT_S = 5.0
_NO_SUCH_PARTITION = -(2**63)
_FINAL = {pb.ORDER_STATE_PROCESSED, pb.ORDER_STATE_DEAD_LETTERED}


class TrackingUnavailable(Exception):
    """The order state cannot be told now (the topic is not read yet)."""


def order_id_problem(order_id: str) -> str | None:
    if not order_id:
        return "order_id is required"
    if len(order_id) > MAX_ORDER_ID_CHARS:
        return f"order_id must be at most {MAX_ORDER_ID_CHARS} characters, got {len(order_id)}"
    if not is_token(order_id):
        return "order_id must be one word without control, format or space characters"
    return None


def status_of(event: StateEvent) -> pb.OrderStatus:
    when = Timestamp()
    when.FromMilliseconds(event.time_ms)
    processed = event.state is State.PROCESSED
    return pb.OrderStatus(
        order_id=event.order_id,
        state=pb.ORDER_STATE_PROCESSED if processed else pb.ORDER_STATE_DEAD_LETTERED,
        time=when,
        processed_by=event.processed_by if processed else "",
        topic=event.topic,
        partition=event.partition,
        offset=event.offset,
        error_kind=status_pb.ErrorKind.Name(_KINDS.get(event.error_kind, 0)),
        reason=event.reason,
    )


_KINDS: dict[str, int] = {
    name.removeprefix("ERROR_KIND_"): status_pb.ErrorKind.Value(name)
    for name in status_pb.ErrorKind.keys()  # noqa: SIM118 (the enum wrapper is not iterable)
}


class OrderTracker:
    """Answers what is known of an order, and waits for it to change."""

    def __init__(
        self, view: OrderStateView, admin_config: dict[str, Any], group_id: str, topic: str
    ):
        self.view = view
        config: dict[str, Any] = {**admin_config, "logger": logging.getLogger("librdkafka")}
        self._admin = AdminClient(config)
        self._group_id = group_id
        self._topic = topic
        self.waiting = 0

    async def status(
        self,
        order_id: str,
        placement: pb.Placement | None,
        wait_s: float = _RESTORE_WAIT_S,
        order_identity: bytes = b"",
    ) -> pb.OrderStatus:
        """The order's status; waits up to ``wait_s`` for the view's restore at start. With
        ``order_identity`` (a caller that knows the content), only that very order's event
        answers, and a DEAD_LETTERED one only for the record at ``placement``."""
        await self._restored(wait_s)
        event = self.view.get(order_id, self._topic, order_identity)
        if event is None and order_identity and placement is not None:
            event = self.view.get(order_id, self._topic)
            if event is not None and (
                event.state is not State.DEAD_LETTERED
                or (event.partition, event.offset) != (placement.partition, placement.offset)
            ):
                event = None
        if event is not None:
            return status_of(event)
        if placement is not None and await self._pending(placement):
            return pb.OrderStatus(
                order_id=order_id,
                state=pb.ORDER_STATE_PENDING,
                topic=self._topic,
                partition=placement.partition,
                offset=placement.offset,
            )
        return pb.OrderStatus(order_id=order_id, state=pb.ORDER_STATE_NOT_FOUND)

    async def changes(
        self,
        order_id: str,
        placement: pb.Placement | None,
        timeout_s: float | None,
        order_identity: bytes = b"",
    ) -> Any:
        """The status now, then each different one, until a final one or ``timeout_s``."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake(_: StateEvent) -> None:
            loop.call_soon_threadsafe(changed.set)

        stop = self.view.listen(order_id, wake)
        self.waiting += 1
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            first_wait = _RESTORE_WAIT_S if timeout_s is None else timeout_s
            last = await self.status(order_id, placement, first_wait, order_identity)
            yield last
            while last.state not in _FINAL:
                wait = _PENDING_RECHECK_S if placement is not None else None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    wait = remaining if wait is None else min(wait, remaining)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait)
                changed.clear()
                current = await self.status(order_id, placement, order_identity=order_identity)
                if current != last:
                    last = current
                    yield current
        finally:
            self.waiting -= 1
            stop()

    async def _restored(self, wait_s: float) -> None:
        if self.view.restored.is_set():
            return
        restored = await asyncio.to_thread(self.view.restored.wait, max(wait_s, 0.0))
        if not restored:
            why = self.view.problem or "it is still being read"
            raise TrackingUnavailable(f"the order state is not known yet: {why}")

    async def _pending(self, placement: pb.Placement) -> bool:
        """Whether the group has not committed past the placement's offset."""
        try:
            committed = await asyncio.to_thread(self._committed, placement.partition)
        except KafkaException as exc:
            raise TrackingUnavailable(
                f"cannot ask Kafka for the group's offsets: {exc.args[0]}"
            ) from None
        return committed != _NO_SUCH_PARTITION and committed <= placement.offset

    def _committed(self, partition: int) -> int:
        from confluent_kafka import ConsumerGroupTopicPartitions

        request = ConsumerGroupTopicPartitions(
            self._group_id, [TopicPartition(self._topic, partition)]
        )
        futures = self._admin.list_consumer_group_offsets(
            [request], request_timeout=_ADMIN_TIMEOUT_S
        )
        result = futures[self._group_id].result(_ADMIN_TIMEOUT_S)
        (answer,) = result.topic_partitions
        if answer.error is not None:  # a partition the topic does not have: nothing pending
            return _NO_SUCH_PARTITION
        return int(answer.offset)


def tracker_for(
    settings: ServiceSettings, client_id: str, create_missing: Callable[[], None] | None = None
) -> OrderTracker:
    """A tracker over a new (not yet started) view of the order-state topic;
    ``create_missing`` as OrderStateView takes it."""
    kafka = settings.kafka
    view = OrderStateView(
        view_config(admin_config(kafka), client_id),
        kafka.order_state_topic_name,
        settings.order_state.window_s,
        settings.order_state.max_orders,
        create_missing,
    )
    return OrderTracker(view, admin_config(kafka), kafka.group_id, kafka.topic)


class OrderTrackingServicer(order_tracking_pb2_grpc.OrderTrackingServiceServicer):
    def __init__(self, tracker: OrderTracker):
        self._tracker = tracker

    async def GetOrder(
        self, request: pb.GetOrderRequest | None, context: Context
    ) -> pb.GetOrderResponse:
        order_id, placement = await _checked(request, context)
        remaining = context.time_remaining()
        wait = _RESTORE_WAIT_S if remaining is None else min(max(remaining - 0.5, 0.0), 10.0)
        try:
            return pb.GetOrderResponse(order=await self._tracker.status(order_id, placement, wait))
        except TrackingUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise AssertionError("unreachable: abort raises") from None

    async def WatchOrder(self, request: pb.WatchOrderRequest | None, context: Context) -> Any:
        order_id, placement = await _checked(request, context)
        if self._tracker.waiting >= MAX_WATCHERS:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{MAX_WATCHERS} orders are watched already; try again later",
            )
        changes = self._tracker.changes(order_id, placement, None)
        try:
            async for status in changes:
                yield pb.WatchOrderResponse(order=status)
        except TrackingUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            await changes.aclose()


async def _checked(
    request: pb.GetOrderRequest | pb.WatchOrderRequest | None, context: Context
) -> tuple[str, pb.Placement | None]:
    """The order_id and placement asked about, or the call ends with INVALID_ARGUMENT."""
    placement = None
    if request is None:
        problem: str | None = "malformed request: not a valid protobuf message"
    else:
        problem = order_id_problem(request.order_id)
        placement = request.placement if request.HasField("placement") else None
    if problem is None and placement is not None and min(placement.partition, placement.offset) < 0:
        problem = "placement.partition and placement.offset must not be negative"
    if problem is not None or request is None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem or "")
        raise AssertionError("unreachable: abort raises")
    return request.order_id, placement


def add_tracking_service(servicer: OrderTrackingServicer, server: grpc.aio.Server) -> None:
    """Like the generated add_OrderTrackingServiceServicer_to_server, with parsers that make
    malformed bytes an INVALID_ARGUMENT."""
    add_tolerant_service(server, pb.DESCRIPTOR.services_by_name["OrderTrackingService"], servicer)
