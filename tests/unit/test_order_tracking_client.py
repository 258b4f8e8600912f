"""The Python client's order tracking against fixed answers (tests/unit/fake_services.py): the
types it returns, the exceptions it raises, sync and asyncio. No broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from coffee.orders.v1 import order_tracking_pb2
from coffee_orders_client import (
    AsyncCoffeeOrdersClient,
    CoffeeOrdersClient,
    OrderDeadLettered,
    OrderNotProcessedInTime,
    OrderState,
    OrderStatus,
    PlacedButNotProcessed,
    Placement,
    RejectedOrder,
    WaitFor,
    WatchDeadlineExceeded,
)

from tests.support.processes import free_port_pair
from tests.unit import fake_services as fake


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with fake.fake_services() as address:
        yield address


@pytest.fixture
def client(target: str) -> Iterator[CoffeeOrdersClient]:
    with CoffeeOrdersClient(target, target) as client:
        yield client


def test_wait_for_processed_returns_the_processing(client: CoffeeOrdersClient) -> None:
    placed = client.place_order("Ann", "Latte", request_id="o-1", wait_for="processed")
    assert (placed.order_id, placed.topic, placed.partition, placed.offset) == (
        "o-1",
        fake.TOPIC,
        1,
        41,
    )
    assert placed.placement == Placement(1, 41)
    processing = placed.processing
    assert processing is not None and processing.state is OrderState.PROCESSED
    assert processing.final and processing.processed_by == fake.MEMBER
    assert processing.time == datetime(2025, 12, 6, 5, 46, 40, 123456, tzinfo=UTC)
    assert (processing.error_kind, processing.reason) == ("", "")
    # The reply comes back whole, nanoseconds included: what --json prints is what was sent.
    assert placed.to_proto() == fake.placed_reply("o-1", fake.processed("o-1"))
    assert client.place_order("Ann", "Latte", "o-1", wait_for=WaitFor.PROCESSED) == placed


def test_the_default_waits_for_kafka_only(client: CoffeeOrdersClient) -> None:
    # "Late" would miss its deadline if the request asked to wait for processing.
    placed = client.place_order("Late", "Latte", request_id="o-2")
    assert placed.processing is None
    assert placed.to_proto() == fake.placed_reply("o-2")
    assert client.place_order("Late", "Latte", "o-2", wait_for="confirmed") == placed


def test_a_deadline_before_processing_says_where_the_order_is(client: CoffeeOrdersClient) -> None:
    with pytest.raises(OrderNotProcessedInTime) as raised:
        client.place_order("Late", "Latte", request_id="o-3", wait_for="processed")
    late = raised.value
    assert isinstance(late, RejectedOrder)  # callers catching any failure still catch it
    assert late.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "not yet seen" in late.message
    assert (late.order_id, late.partition, late.offset) == ("o-3", 1, 41)
    assert late.placement == Placement(1, 41) and late.placed.topic == fake.TOPIC
    assert late.processing is not None and late.processing.state is OrderState.PENDING


def test_a_dead_lettered_order_says_why(client: CoffeeOrdersClient) -> None:
    with pytest.raises(OrderDeadLettered) as raised:
        client.place_order("Dead", "Latte", request_id="o-4", wait_for="processed")
    dead = raised.value
    assert dead.code is grpc.StatusCode.FAILED_PRECONDITION
    assert dead.order_id == "o-4" and dead.placement == Placement(1, 41)
    assert dead.processing is not None
    assert dead.processing.state is OrderState.DEAD_LETTERED and dead.processing.final
    assert (dead.processing.error_kind, dead.processing.reason) == ("NOT_JSON", "value is not JSON")


def test_a_producer_that_ignores_wait_for_is_not_taken_for_processed(
    client: CoffeeOrdersClient,
) -> None:
    with pytest.raises(PlacedButNotProcessed) as raised:
        client.place_order("Old", "Latte", request_id="o-5", wait_for="processed")
    old = raised.value
    assert type(old) is PlacedButNotProcessed
    assert old.code is grpc.StatusCode.UNIMPLEMENTED and old.order_id == "o-5"
    assert old.processing is None


def test_other_failures_are_rejected_orders_as_before(client: CoffeeOrdersClient) -> None:
    with pytest.raises(RejectedOrder) as raised:
        client.place_order(" ", "Latte", wait_for="processed")
    assert type(raised.value) is RejectedOrder
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.field_violations == {"customer_name": "customer_name must not be blank"}
    with pytest.raises(ValueError, match="soon"):
        client.place_order("Ann", "Latte", wait_for="soon")


def test_get_order_answers_each_state(client: CoffeeOrdersClient) -> None:
    done = client.get_order(fake.PROCESSED_ID)
    assert done.state is OrderState.PROCESSED and done.order_id == fake.PROCESSED_ID
    assert done.to_proto() == fake.processed(fake.PROCESSED_ID)
    dead = client.get_order(fake.DEAD_ID)
    assert dead.state is OrderState.DEAD_LETTERED and dead.error_kind == "NOT_JSON"
    # Without the placement an order not processed yet cannot be told from an unknown one.
    assert client.get_order(fake.PENDING_ID).state is OrderState.NOT_FOUND
    waiting = client.get_order(fake.PENDING_ID, Placement(1, 41))
    assert waiting.state is OrderState.PENDING and not waiting.final
    assert waiting.placement == Placement(1, 41) and waiting.time is None
    unknown = client.get_order(fake.UNKNOWN_ID)
    assert unknown.state is OrderState.NOT_FOUND and unknown.time is None
    with pytest.raises(RejectedOrder) as raised:
        client.get_order(" ")
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT


def test_watch_order_streams_to_a_final_state(client: CoffeeOrdersClient) -> None:
    states = [status.state for status in client.watch_order(fake.PROCESSED_ID, timeout=10)]
    assert states == [OrderState.PENDING, OrderState.PROCESSED]
    states = [status.state for status in client.watch_order(fake.DEAD_ID, Placement(1, 41))]
    assert states == [OrderState.PENDING, OrderState.DEAD_LETTERED]


def test_watch_order_past_its_deadline_raises_with_the_last_state(
    client: CoffeeOrdersClient,
) -> None:
    seen: list[OrderStatus] = []
    with pytest.raises(WatchDeadlineExceeded) as raised:
        seen.extend(client.watch_order(fake.PENDING_ID, Placement(1, 41), timeout=1))
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert [status.state for status in seen] == [OrderState.PENDING]
    assert raised.value.last == seen[-1]


def test_a_watch_left_early_ends_its_call(client: CoffeeOrdersClient) -> None:
    watch = client.watch_order(fake.PENDING_ID, Placement(1, 41), timeout=30)
    assert next(watch).state is OrderState.PENDING
    watch.close()  # cancels the stream: the fake's wait for the deadline is not waited for
    assert client.get_order(fake.PROCESSED_ID).state is OrderState.PROCESSED


def test_tracking_target_is_its_own_address(target: str) -> None:
    nowhere = f"127.0.0.1:{free_port_pair()}"
    with CoffeeOrdersClient(nowhere, nowhere, tracking_target=target) as client:
        assert client.get_order(fake.PROCESSED_ID).state is OrderState.PROCESSED
    with CoffeeOrdersClient(nowhere, target, tracking_target=target) as client:
        assert client.get_order(fake.DEAD_ID).state is OrderState.DEAD_LETTERED


def test_a_status_built_by_hand_converts_to_the_contracts_message() -> None:
    status = OrderStatus(
        order_id="o-9",
        state=OrderState.DEAD_LETTERED,
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        processed_by="",
        topic=fake.TOPIC,
        partition=2,
        offset=7,
        error_kind="NOT_JSON",
        reason="value is not JSON",
    )
    message = status.to_proto()
    assert message.state == order_tracking_pb2.ORDER_STATE_DEAD_LETTERED
    assert message.time.ToDatetime(tzinfo=UTC) == status.time
    assert message.error_kind != 0 and message.reason == "value is not JSON"


async def test_the_async_client_does_the_same(target: str) -> None:
    async with AsyncCoffeeOrdersClient(target, target) as client:
        placed = await client.place_order("Ann", "Latte", "a-1", wait_for="processed")
        assert placed.processing is not None
        assert placed.processing.state is OrderState.PROCESSED
        with pytest.raises(OrderNotProcessedInTime) as late:
            await client.place_order("Late", "Latte", "a-2", wait_for="processed")
        assert late.value.order_id == "a-2" and late.value.placement == Placement(1, 41)
        with pytest.raises(OrderDeadLettered):
            await client.place_order("Dead", "Latte", "a-3", wait_for=WaitFor.PROCESSED)
        with pytest.raises(RejectedOrder) as blank:
            await client.place_order(" ", "Latte")
        assert blank.value.field_violations == {"customer_name": "customer_name must not be blank"}

        assert (await client.get_order(fake.DEAD_ID)).state is OrderState.DEAD_LETTERED
        states = [status.state async for status in client.watch_order(fake.PROCESSED_ID)]
        assert states == [OrderState.PENDING, OrderState.PROCESSED]
        seen: list[OrderStatus] = []
        with pytest.raises(WatchDeadlineExceeded) as raised:
            async for status in client.watch_order(fake.PENDING_ID, Placement(1, 41), timeout=1):
                seen.append(status)
        assert raised.value.last == seen[-1] and seen[-1].state is OrderState.PENDING
