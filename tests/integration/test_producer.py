"""The producer against a real Apache Kafka broker."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import orders_pb2_grpc
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_localkafka import LocalKafka
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from tests.support.kafka_io import watermarks
from tests.support.processes import free_port_pair
from tests.support.services import (
    health_status,
    order,
    order_client,
    producer_settings,
    running_producer,
)
from tests.support.tools import kcat_read, run_tool

pytestmark = pytest.mark.kafka


def _end_offsets(broker: LocalKafka, topic: str) -> list[int]:
    return [high for _, high in watermarks(broker.bootstrap_servers, topic)]


async def test_place_order_lands_as_seed_json_with_order_id_header(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address, order_client(address) as client:
        reply = await client.PlaceOrder(order("John Doe", "Latte"), timeout=30)
    assert reply.topic == fresh_topic and reply.offset >= 0 and len(reply.order_id) == 36
    key, headers, value = kcat_read(
        kafka_broker.bootstrap_servers, fresh_topic, reply.partition, reply.offset
    ).split("|", 2)
    assert value == '{"customer_name":"John Doe","coffee_type":"Latte"}'
    assert key == reply.order_id
    assert f"order_id={reply.order_id}" in headers
    assert "content-type=application/json" in headers


async def test_traceparent_travels_as_a_header(kafka_broker: LocalKafka, fresh_topic: str) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address, order_client(address) as client:
        reply = await client.PlaceOrder(order(), metadata=(("traceparent", trace),), timeout=30)
    _, headers, _ = kcat_read(
        kafka_broker.bootstrap_servers, fresh_topic, reply.partition, reply.offset
    ).split("|", 2)
    # The trace id travels; the span id is the producer's own span when OpenTelemetry is active.
    sent = dict(item.split("=", 1) for item in headers.split(","))
    assert sent["traceparent"].split("-")[1] == trace.split("-")[1]
    assert sent["traceparent"].startswith("00-") and sent["traceparent"].endswith("-01")


async def test_blank_name_is_invalid_argument_naming_the_field_and_nothing_is_published(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    before = _end_offsets(kafka_broker, fresh_topic)
    async with running_producer(settings) as address, order_client(address) as client:
        for bad in (order("   ", "Latte"), order("Ann", "x" * 101), order("A\x07", "Mocha")):
            call = client.PlaceOrder(bad, timeout=30)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            status = await rpc_status.aio.from_call(call)  # type: ignore[attr-defined]
            assert status is not None
            bad_request = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad_request)
            assert bad_request.field_violations[0].field in (error.value.details() or "")
        await client.PlaceOrder(order(), timeout=30)  # the service is still fine
    after = _end_offsets(kafka_broker, fresh_topic)
    assert sum(after) - sum(before) == 1


async def test_request_id_repeats_get_the_original_answer_without_publishing(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address, order_client(address) as client:
        first = await client.PlaceOrder(order(request_id="req-1"), timeout=30)
        concurrent = await asyncio.gather(
            *(client.PlaceOrder(order(request_id="req-1"), timeout=30) for _ in range(5))
        )
        other = await client.PlaceOrder(order(request_id="req-2"), timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await client.PlaceOrder(order("Someone Else", request_id="req-1"), timeout=30)
    assert all(reply == first for reply in concurrent)
    assert other.order_id != first.order_id
    assert reused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert sum(_end_offsets(kafka_broker, fresh_topic)) == 2
    # A second instance knows nothing of the first, but gives the same order_id.
    async with running_producer(settings) as address, order_client(address) as client:
        again = await client.PlaceOrder(order(request_id="req-1"), timeout=30)
    assert again.order_id == first.order_id and again.partition == first.partition


async def test_two_producer_instances_both_confirm(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with (
        running_producer(settings) as first,
        running_producer(settings) as second,
        order_client(first) as one,
        order_client(second) as two,
    ):
        replies = await asyncio.gather(
            *(one.PlaceOrder(order(f"A{i}"), timeout=30) for i in range(20)),
            *(two.PlaceOrder(order(f"B{i}"), timeout=30) for i in range(20)),
        )
    assert len({(r.partition, r.offset) for r in replies}) == 40
    assert sum(_end_offsets(kafka_broker, fresh_topic)) == 40


async def test_missing_topic_is_failed_precondition_fast_and_health_not_serving(
    kafka_broker: LocalKafka, caplog: pytest.LogCaptureFixture
) -> None:
    settings = producer_settings(
        kafka_broker.bootstrap_servers, topic="no_such_topic", delivery_timeout_ms=60_000
    )
    async with running_producer(settings) as address, order_client(address) as client:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await client.PlaceOrder(order(), timeout=90)
        waited = time.monotonic() - started
        assert waited < 30, f"answered after {waited:.1f} s: it waited for the delivery timeout"
        async with grpc.aio.insecure_channel(address) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="coffee.orders.v1.OrderService")
            )
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "no_such_topic does not exist" in (error.value.details() or "")
    assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert "topic no_such_topic does not exist" in caplog.text


async def test_grpcurl_lists_and_places_an_order_without_proto_files(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address:
        listing = await asyncio.to_thread(run_tool, "grpcurl", "-plaintext", address, "list")
        body = json.dumps({"customer_name": "John Doe", "coffee_type": "Latte"})
        placed = await asyncio.to_thread(
            run_tool,
            "grpcurl",
            "-plaintext",
            "-emit-defaults",
            "-d",
            body,
            address,
            "coffee.orders.v1.OrderService/PlaceOrder",
        )
    assert "coffee.orders.v1.OrderService" in listing.stdout.split(), listing.stderr
    assert placed.returncode == 0, placed.stderr
    reply = json.loads(placed.stdout)
    assert reply["topic"] == fresh_topic
    assert reply["offset"] == "0" or int(reply["offset"]) >= 0


@pytest.mark.cluster
async def test_broker_down_gives_unavailable_in_time_then_recovers_without_restart(
    kafka_cluster_factory: Callable[..., LocalKafka],
) -> None:
    from coffee_orders_devtools.waiting import async_wait_until

    cluster = kafka_cluster_factory(nodes=1)
    settings = producer_settings(cluster.bootstrap_servers, delivery_timeout_ms=3000)
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    async with running_producer(settings) as address, order_client(address) as client:

        async def first_order_confirmed() -> bool:
            """A fresh broker may take longer than the 3 s delivery timeout to be ready."""
            try:
                await client.PlaceOrder(order(request_id="before-outage"), timeout=30)
            except grpc.aio.AioRpcError as error:
                assert error.code() is grpc.StatusCode.UNAVAILABLE, error.details()
                return False
            return True

        await async_wait_until(first_order_confirmed, 60, "a first order confirmed")
        cluster.kill_node(1)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await client.PlaceOrder(order(request_id="during-outage"), timeout=30)
        elapsed = time.monotonic() - started
        assert error.value.code() is grpc.StatusCode.UNAVAILABLE, error.value.details()
        assert elapsed < 20, f"UNAVAILABLE after {elapsed:.1f} s: hung past the delivery timeout"

        async def is_(status: int) -> bool:
            return await health_status(address) == status

        await async_wait_until(lambda: is_(not_serving), 20, "health NOT_SERVING")
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # known unreachable: at once
            await client.PlaceOrder(order(), timeout=5)  # waiting on delivery would exceed it
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

        await asyncio.to_thread(cluster.start_node, 1)
        await async_wait_until(lambda: is_(serving), 30, "health SERVING")
        retried = await client.PlaceOrder(order(request_id="during-outage"), timeout=30)
    assert retried.offset >= 0


def test_cli_producer_serves_and_stops_cleanly_on_sigterm(
    kafka_broker: LocalKafka, tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    port = free_port_pair()
    show_logs_on_failure(tmp_path / "producer.log")
    producer = RunningCommand(
        tmp_path / "producer.log",
        "producer",
        "--listen",
        f"127.0.0.1:{port}",
        env={"KAFKA_BROKERS": kafka_broker.bootstrap_servers, "COFFEE_GRACE_PERIOD": "5"},
    )
    try:
        producer.wait_for_output("producer listening")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = orders_pb2_grpc.OrderServiceStub(channel).PlaceOrder(order(), timeout=30)
        assert reply.offset >= 0
    finally:
        code = producer.stop(signal.SIGTERM, timeout=15)
    assert code == 0, producer.output()  # stopped by itself within stop()'s 15 s bound
    log = producer.output()
    assert "stopping: health NOT_SERVING" in log and "producer stopped" in log
    assert "undelivered=0" in log and "Traceback" not in log
