"""PlaceOrders over real gRPC against a fake publisher (tests/unit/order_service.py): one result
per order, in order, whatever order Kafka confirms them in; an order fails alone; a batch larger
than the in-flight limit goes to Kafka in parts; bad batches end the stream.
tests/integration/test_order_stream.py does the same against a real broker."""

from __future__ import annotations

import grpc
import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_common import wire
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_producer.publisher import QueueFull
from confluent_kafka import KafkaError

from tests.support.spans import in_memory_spans
from tests.unit.order_service import Served, order, order_service

MAX_ORDERS_PER_REQUEST = 1000  # docs/api.md
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE_ID}-b7ad6b7169203331-01"  # the caller's W3C traceparent


def batch(*orders: orders_pb2.PlaceOrderRequest) -> orders_pb2.PlaceOrdersRequest:
    return orders_pb2.PlaceOrdersRequest(orders=orders)


def numbered(count: int, prefix: str = "r") -> orders_pb2.PlaceOrdersRequest:
    return batch(*(order(request_id=f"{prefix}{index}") for index in range(count)))


def outcomes(response: object) -> list[str]:
    assert isinstance(response, orders_pb2.PlaceOrdersResponse)
    return [result.WhichOneof("outcome") or "" for result in response.results]


def codes(response: orders_pb2.PlaceOrdersResponse) -> list[grpc.StatusCode | None]:
    by_value = {code.value[0]: code for code in grpc.StatusCode}
    return [
        by_value[result.error.code] if result.HasField("error") else None
        for result in response.results
    ]


def deliver_all(served: Served) -> None:
    for index, sent in enumerate(served.publisher.sent):
        if not sent.settled:
            served.publisher.deliver(index)


async def test_results_come_in_order_whatever_order_kafka_confirms_them_in() -> None:
    async with order_service() as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(numbered(3, "a"))
        await stream.write(numbered(2, "b"))
        await served.publisher.published(5)
        for index in reversed(range(5)):
            served.publisher.deliver(index, partition=index % 2)
        first, second = await stream.read(), await stream.read()
        await stream.done_writing()
    assert isinstance(first, orders_pb2.PlaceOrdersResponse)
    assert isinstance(second, orders_pb2.PlaceOrdersResponse)
    confirmed = [r.confirmed for r in [*first.results, *second.results]]
    expected = [wire.order_id_for(r) for r in ["a0", "a1", "a2", "b0", "b1"]]
    assert [c.order_id for c in confirmed] == expected
    assert [(c.partition, c.offset) for c in confirmed] == [(i % 2, i) for i in range(5)]
    assert served.answered("OK") == 5


async def test_an_invalid_order_fails_alone_and_is_not_published() -> None:
    async with order_service() as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(batch(order(request_id="a"), order(" ", request_id="b"), order()))
        await served.publisher.published(2)
        deliver_all(served)
        response = await stream.read()
        await stream.done_writing()
    assert isinstance(response, orders_pb2.PlaceOrdersResponse)
    assert codes(response) == [None, grpc.StatusCode.INVALID_ARGUMENT, None]
    assert "customer_name" in response.results[1].error.message
    assert len(served.publisher.sent) == 2
    assert (served.answered("OK"), served.answered("INVALID_ARGUMENT")) == (2, 1)


async def test_a_request_id_repeated_in_a_stream_is_published_once() -> None:
    async with order_service() as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(batch(order(request_id="r1"), order(request_id="r1")))
        await served.publisher.published(1)
        deliver_all(served)
        first = await stream.read()
        await stream.write(batch(order(request_id="r1")))
        second = await stream.read()
        await stream.done_writing()
    assert outcomes(first) == ["confirmed", "confirmed"] and outcomes(second) == ["confirmed"]
    assert isinstance(first, orders_pb2.PlaceOrdersResponse)
    assert isinstance(second, orders_pb2.PlaceOrdersResponse)
    assert first.results[0] == first.results[1] == second.results[0]
    assert len(served.publisher.sent) == 1


async def test_failures_of_single_orders_are_results_and_the_stream_goes_on() -> None:
    async with order_service() as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(numbered(3))
        await served.publisher.published(3)
        served.publisher.deliver(0)
        served.publisher.fail(1, KafkaError(KafkaError._MSG_TIMED_OUT))
        served.publisher.fail(2, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
        failed = await stream.read()
        await stream.write(numbered(1, "later"))
        await served.publisher.published(4)
        deliver_all(served)
        later = await stream.read()
        await stream.done_writing()
    assert isinstance(failed, orders_pb2.PlaceOrdersResponse)
    unavailable, denied = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED
    assert codes(failed) == [None, unavailable, denied]
    assert "retry with the same request_id" in failed.results[1].error.message
    assert outcomes(later) == ["confirmed"]


async def test_a_batch_larger_than_the_in_flight_limit_goes_to_kafka_in_parts() -> None:
    async with order_service(max_in_flight=2) as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(numbered(5))
        for published in (2, 4, 5):
            await served.publisher.published(published)
            deliver_all(served)
        response = await stream.read()
        await stream.done_writing()
    assert outcomes(response) == ["confirmed"] * 5
    assert served.publisher.most_in_flight == 2


async def test_a_stream_holding_the_in_flight_limit_leaves_no_room_for_place_order() -> None:
    async with order_service(max_in_flight=2) as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(numbered(2))
        await served.publisher.published(2)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await served.stub.PlaceOrder(order(), timeout=10)
        deliver_all(served)
        response = await stream.read()
        await stream.done_writing()
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert outcomes(response) == ["confirmed"] * 2


@pytest.mark.parametrize(
    ("refusal", "kafka", "code"),
    [
        (QueueFull(), KafkaReachability.REACHABLE, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (None, KafkaReachability.UNREACHABLE, grpc.StatusCode.UNAVAILABLE),
        (None, KafkaReachability.TOPIC_MISSING, grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_orders_refused_before_kafka_give_their_slots_back(
    refusal: Exception | None, kafka: KafkaReachability, code: grpc.StatusCode
) -> None:
    async with order_service(max_in_flight=2) as served:
        served.publisher.refuse, served.kafka = refusal, kafka
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(numbered(2))
        refused = await stream.read()
        served.publisher.refuse, served.kafka = None, KafkaReachability.REACHABLE
        await stream.write(numbered(2, "again"))  # room for both: the slots were given back
        await served.publisher.published(2)
        deliver_all(served)
        placed = await stream.read()
        await stream.done_writing()
    assert isinstance(refused, orders_pb2.PlaceOrdersResponse)
    assert codes(refused) == [code, code]
    assert outcomes(placed) == ["confirmed"] * 2
    assert served.answered(code.name) == 2


@pytest.mark.parametrize("size", [0, MAX_ORDERS_PER_REQUEST + 1])
async def test_an_empty_or_oversized_batch_ends_the_stream_with_invalid_argument(
    size: int,
) -> None:
    async with order_service() as served:
        stream = served.stub.PlaceOrders(timeout=10)
        await stream.write(numbered(1))
        await served.publisher.published(1)
        deliver_all(served)
        assert outcomes(await stream.read()) == ["confirmed"]
        await stream.write(numbered(size, "big"))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stream.read()
    assert ended.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"1 to {MAX_ORDERS_PER_REQUEST} orders, got {size}" in (ended.value.details() or "")
    assert len(served.publisher.sent) == 1


async def test_malformed_bytes_end_the_stream_with_invalid_argument() -> None:
    async with order_service() as served:
        place = served.channel.stream_stream(
            "/coffee.orders.v1.OrderService/PlaceOrders", None, None
        )
        stream = place(None, timeout=10)
        await stream.write(b"\xff\xff\xff")
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stream.read()
    assert ended.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed protobuf" in (ended.value.details() or "")
    assert served.publisher.sent == []


async def test_a_traced_stream_records_its_batch_and_each_order_in_the_callers_trace() -> None:
    exporter = in_memory_spans()  # an SDK tracer provider: spans are recorded
    exporter.clear()
    async with order_service() as served:
        stream = served.stub.PlaceOrders(timeout=10, metadata=(("traceparent", CALLER),))
        await stream.write(numbered(2, "t"))
        await served.publisher.published(2)
        deliver_all(served)
        assert outcomes(await stream.read()) == ["confirmed", "confirmed"]
        await stream.done_writing()
    spans = [
        span
        for span in exporter.get_finished_spans()
        if span.context is not None and f"{span.context.trace_id:032x}" == TRACE_ID
    ]
    assert sorted(span.name for span in spans) == ["PlaceOrders", *["send coffee_orders"] * 2]
    (batch_span,) = [span for span in spans if span.name == "PlaceOrders"]
    assert batch_span.context is not None
    for send in (span for span in spans if span.name != "PlaceOrders"):
        assert send.parent is not None and send.parent.span_id == batch_span.context.span_id
