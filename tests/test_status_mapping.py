"""One test per row of the status mapping (docs/api.md, the PlaceOrder status table)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_common.validation import InvalidOrder, validate_order
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_producer import status_mapping
from confluent_kafka import KafkaError
from google.rpc import error_details_pb2

from tests.support.kafka_io import watermarks
from tests.support.services import (
    order,
    order_client,
    producer_settings,
    running_producer,
)

TOPIC = "coffee_orders"


def test_invalid_fields_give_invalid_argument_with_bad_request() -> None:
    with pytest.raises(InvalidOrder) as invalid:
        validate_order(" ", "x" * 101)
    failure = status_mapping.invalid_order(invalid.value.violations)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    (detail,) = failure.details
    assert isinstance(detail, error_details_pb2.BadRequest)
    assert [v.field for v in detail.field_violations] == ["customer_name", "coffee_type"]
    assert [v.reason for v in detail.field_violations] == ["BLANK", "OVERSIZED"]


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
    ],
)
def test_unreachable_timed_out_or_retriable_gives_unavailable(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.UNAVAILABLE
    assert "retry with the same request_id" in failure.message


def test_any_retriable_kafka_error_gives_unavailable() -> None:
    error = KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, retriable=True)
    assert status_mapping.for_kafka_error(error, TOPIC).code is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("code", [KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC])
def test_unknown_topic_gives_failed_precondition(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.FAILED_PRECONDITION
    assert TOPIC in failure.message


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    ],
)
def test_authorization_gives_permission_denied(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("code", [KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD])
def test_other_non_retriable_errors_give_internal(code: int) -> None:
    failure = status_mapping.for_kafka_error(KafkaError(code), TOPIC)
    assert failure.code is grpc.StatusCode.INTERNAL
    assert KafkaError(code).name() in failure.message


def test_fatal_error_is_not_called_retriable() -> None:
    error = KafkaError(KafkaError._FATAL, fatal=True, retriable=True)
    assert status_mapping.for_kafka_error(error, TOPIC).code is grpc.StatusCode.INTERNAL


# The rows whose status does not depend on a Kafka error are checked where they happen, against a
# real broker: deadline (test_faults: deadline shorter than delivery), in-flight limit (test_faults:
# overload), topic missing, Kafka unreachable, request_id reused, malformed protobuf
# (test_producer), credentials refused (test_security); local queue full and shutting down below.


@pytest.mark.kafka
async def test_local_queue_full_gives_resource_exhausted_and_publishes_nothing(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    # room for one message in librdkafka's queue, held there for a while by linger.ms
    properties = {"queue.buffering.max.messages": "1", "linger.ms": "3000"}
    settings = producer_settings(
        kafka_broker.bootstrap_servers, topic=fresh_topic, properties=properties
    )
    async with running_producer(settings) as address, order_client(address) as client:
        calls = [client.PlaceOrder(order(request_id=f"q{i}"), timeout=30) for i in range(5)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    confirmed = [o for o in outcomes if not isinstance(o, BaseException)]
    assert refused, "no order found the local queue full"
    for error in refused:
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert "local queue is full" in (error.details() or "")
    assert len(confirmed) + len(refused) == 5
    assert _on_topic(kafka_broker, fresh_topic) == len(confirmed)


@pytest.mark.kafka
async def test_batch_sent_while_the_producer_shuts_down_gets_unavailable(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    stop = asyncio.Event()
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings, stop) as address, order_client(address) as client:
        stream = client.PlaceOrders()
        await stream.write(orders_pb2.PlaceOrdersRequest(orders=[order(request_id="before")]))
        before = await stream.read()
        assert isinstance(before, orders_pb2.PlaceOrdersResponse)
        assert before.results[0].WhichOneof("outcome") == "confirmed"
        stop.set()  # SIGTERM: the stream stays open for the grace period
        confirmed = 1

        async def refused_batch() -> orders_pb2.OrderResult | None:
            """Send one order; its result once the producer refuses it (it may still take it)."""
            nonlocal confirmed
            request = orders_pb2.PlaceOrdersRequest(orders=[order(request_id=f"d{confirmed}")])
            await stream.write(request)
            answer = await stream.read()
            assert isinstance(answer, orders_pb2.PlaceOrdersResponse)
            (result,) = answer.results
            if result.WhichOneof("outcome") == "confirmed":
                confirmed += 1
                return None
            return result

        result = await async_wait_until(refused_batch, 30, "a batch refused while shutting down")
        assert result.error.code == grpc.StatusCode.UNAVAILABLE.value[0], result
        assert "shutting down" in result.error.message
        await stream.done_writing()
    assert _on_topic(kafka_broker, fresh_topic) == confirmed


def _on_topic(broker: LocalKafka, topic: str) -> int:
    return sum(high - low for low, high in watermarks(broker.bootstrap_servers, topic))
