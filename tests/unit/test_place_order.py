"""PlaceOrder over real gRPC against a fake publisher (tests/unit/order_service.py): the answer
waits for Kafka's delivery report, every refusal has its status (docs/api.md), a request_id is
published once, the in-flight limit holds. tests/integration/test_producer.py does the same
against a real broker."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable

import grpc
import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_common import wire
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_producer.publisher import DeliveryFailed, QueueFull
from confluent_kafka import KafkaError
from google.rpc import error_details_pb2

from tests.unit.fake_publisher import TIMESTAMP_MS
from tests.unit.order_service import TOPIC, details, order, order_service


async def _refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_the_answer_is_where_kafka_put_the_order_in_the_original_format() -> None:
    async with order_service() as served:
        call = served.stub.PlaceOrder(order(request_id="order-1"), timeout=10)
        (sent,) = await served.publisher.published(1)
        served.publisher.deliver(0, partition=2)
        reply = await call
    order_id = wire.order_id_for("order-1")
    assert (reply.order_id, reply.topic, reply.partition, reply.offset) == (order_id, TOPIC, 2, 0)
    assert reply.timestamp.ToMilliseconds() == TIMESTAMP_MS
    assert (sent.topic, sent.key) == (TOPIC, order_id.encode())
    assert sent.value == b'{"customer_name":"John Doe","coffee_type":"Latte"}'
    assert ("order_id", order_id.encode()) in sent.headers
    assert ("content-type", b"application/json") in sent.headers
    assert served.answered("OK") == 1


async def test_orders_without_a_request_id_get_order_ids_of_their_own() -> None:
    async with order_service() as served:
        calls = [served.stub.PlaceOrder(order(), timeout=10) for _ in range(2)]
        await served.publisher.published(2)
        served.publisher.deliver(1)
        served.publisher.deliver(0)
        first, second = [await call for call in calls]
    keys = {sent.key for sent in served.publisher.sent}
    assert first.order_id != second.order_id and keys == {
        o.order_id.encode() for o in [first, second]
    }


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (order(" ", "x" * 101), ["customer_name", "coffee_type"]),
        (order(coffee_type=""), ["coffee_type"]),
        (order("Jo\x1bhn"), ["customer_name"]),
        (order(request_id="r" * 129), ["request_id"]),
    ],
)
async def test_invalid_fields_give_invalid_argument_naming_each_and_publish_nothing(
    request_: orders_pb2.PlaceOrderRequest, fields: list[str]
) -> None:
    async with order_service() as served:
        error = await _refused(served.stub.PlaceOrder(request_, timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    (bad_request,) = details(error)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [violation.field for violation in bad_request.field_violations] == fields
    assert served.publisher.sent == []
    assert served.answered("INVALID_ARGUMENT") == 1


async def test_malformed_bytes_give_invalid_argument() -> None:
    async with order_service() as served:
        place = served.channel.unary_unary("/coffee.orders.v1.OrderService/PlaceOrder", None, None)
        error = await _refused(place(b"\xff\xff\xff", timeout=10))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed protobuf" in (error.details() or "")
    assert served.publisher.sent == []


async def test_a_request_id_is_published_once_and_repeats_get_the_same_answer() -> None:
    async with order_service() as served:
        first = served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
        await served.publisher.published(1)
        while_in_flight = served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
        served.publisher.deliver(0, partition=1)
        answers = [await first, await while_in_flight]
        answers.append(await served.stub.PlaceOrder(order(request_id=" r1 "), timeout=10))
    assert len(served.publisher.sent) == 1
    assert answers[0] == answers[1] == answers[2]
    assert answers[0].order_id == wire.order_id_for("r1") and answers[0].partition == 1


async def test_a_request_id_used_for_another_order_gives_failed_precondition() -> None:
    async with order_service() as served:
        call = served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
        await served.publisher.published(1)
        served.publisher.deliver(0)
        await call
        error = await _refused(
            served.stub.PlaceOrder(order(coffee_type="Mocha", request_id="r1"), timeout=10)
        )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "'r1' was already used for a different order" in (error.details() or "")
    assert len(served.publisher.sent) == 1


async def test_an_undelivered_order_gives_unavailable_and_a_retry_publishes_it_again() -> None:
    async with order_service() as served:
        call = served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
        await served.publisher.published(1)
        served.publisher.fail(0, KafkaError(KafkaError._MSG_TIMED_OUT))
        error = await _refused(call)
        retry = served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
        await served.publisher.published(2)
        served.publisher.deliver(1)
        reply = await retry
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "retry with the same request_id" in (error.details() or "")
    first, second = served.publisher.sent
    assert first.key == second.key == reply.order_id.encode()
    assert (served.answered("UNAVAILABLE"), served.answered("OK")) == (1, 1)


@pytest.mark.parametrize(
    ("refusal", "code", "words"),
    [
        (QueueFull(), grpc.StatusCode.RESOURCE_EXHAUSTED, "local queue is full"),
        (
            DeliveryFailed(KafkaError(KafkaError._UNKNOWN_TOPIC)),
            grpc.StatusCode.FAILED_PRECONDITION,
            f"topic {TOPIC} does not exist",
        ),
        (
            DeliveryFailed(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)),
            grpc.StatusCode.INTERNAL,
            "MSG_SIZE_TOO_LARGE",
        ),
    ],
)
async def test_an_order_kafka_refuses_at_once_has_its_status_and_holds_no_slot(
    refusal: Exception, code: grpc.StatusCode, words: str
) -> None:
    async with order_service(max_in_flight=1) as served:
        served.publisher.refuse = refusal
        error = await _refused(served.stub.PlaceOrder(order(), timeout=10))
        served.publisher.refuse = None
        call = served.stub.PlaceOrder(order(), timeout=10)  # the only slot is free again
        await served.publisher.published(1)
        served.publisher.deliver(0)
        await call
    assert error.code() is code
    assert words in (error.details() or "")
    assert served.answered(code.name) == 1


@pytest.mark.parametrize(
    ("kafka", "code", "words"),
    [
        (KafkaReachability.UNREACHABLE, grpc.StatusCode.UNAVAILABLE, "Kafka is unreachable"),
        (KafkaReachability.TOPIC_MISSING, grpc.StatusCode.FAILED_PRECONDITION, TOPIC),
        (KafkaReachability.AUTH_FAILED, grpc.StatusCode.PERMISSION_DENIED, "credentials"),
        (KafkaReachability.BROKER_UNTRUSTED, grpc.StatusCode.UNAVAILABLE, "certificate"),
    ],
)
async def test_a_kafka_the_producer_cannot_use_refuses_orders_before_publishing(
    kafka: KafkaReachability, code: grpc.StatusCode, words: str
) -> None:
    async with order_service() as served:
        served.kafka = kafka
        error = await _refused(served.stub.PlaceOrder(order(request_id="r1"), timeout=10))
    assert error.code() is code
    assert words in (error.details() or "")
    assert served.publisher.sent == []


async def test_a_full_in_flight_limit_refuses_at_once_until_a_delivery_frees_a_slot() -> None:
    async with order_service(max_in_flight=1) as served:
        waiting = served.stub.PlaceOrder(order(), timeout=10)
        await served.publisher.published(1)
        error = await _refused(served.stub.PlaceOrder(order(), timeout=10))
        served.publisher.deliver(0)
        await waiting
        call = served.stub.PlaceOrder(order(), timeout=10)
        await served.publisher.published(2)
        served.publisher.deliver(1)
        await call
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1 orders are already waiting for Kafka" in (error.details() or "")
    assert served.publisher.most_in_flight == 1


async def test_a_deadline_before_delivery_gives_deadline_exceeded_and_a_repeat_the_order() -> None:
    async with order_service() as served:
        error = await _refused(served.stub.PlaceOrder(order(request_id="r1"), timeout=0.5))
        await served.publisher.published(1)
        served.publisher.deliver(0)  # it was still delivered
        reply = await served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(served.publisher.sent) == 1 and reply.order_id == wire.order_id_for("r1")


async def test_wait_for_processed_without_order_tracking_says_where_the_order_was_placed() -> None:
    async with order_service() as served:
        call = served.stub.PlaceOrder(
            order(request_id="r1", wait_for=orders_pb2.WAIT_FOR_PROCESSED), timeout=10
        )
        await served.publisher.published(1)
        served.publisher.deliver(0, partition=2)
        error = await _refused(call)
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "order tracking is off" in (error.details() or "")
    (placed,) = details(error)
    assert isinstance(placed, orders_pb2.PlaceOrderResponse)
    assert (placed.order_id, placed.partition, placed.offset) == (wire.order_id_for("r1"), 2, 0)


async def test_a_caller_that_leaves_does_not_stop_the_delivery_of_its_order() -> None:
    async with order_service() as served:
        call = served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
        await served.publisher.published(1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        served.publisher.deliver(0)
        reply = await served.stub.PlaceOrder(order(request_id="r1"), timeout=10)
    assert len(served.publisher.sent) == 1 and reply.offset == 0


async def test_a_failed_delivery_nobody_waits_for_any_more_is_not_logged_as_unread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with order_service() as served:
        error = await _refused(served.stub.PlaceOrder(order(), timeout=0.5))
        served.publisher.fail(0, KafkaError(KafkaError._MSG_TIMED_OUT))
        served.publisher.sent.clear()  # the last reference to the order's outcome
    del served, error
    gc.collect()  # asyncio logs an unread exception when the future is collected
    assert "never retrieved" not in caplog.text
