"""TLS and mTLS on both gRPC servers, SASL to Kafka, and request limits."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_client import CoffeeOrdersClient, RejectedOrder, tls_credentials
from coffee_orders_common.grpc_server import MAX_METADATA_BYTES
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.settings import TlsSettings
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka

from tests.integration.test_go_client import run_go_test
from tests.support.certs import Authority, make_authority
from tests.support.processes import free_port_pair
from tests.support.services import (
    brewed_order_ids,
    consumer_settings,
    consumer_status,
    health_status,
    order,
    producer_settings,
    running_consumer,
    running_producer,
)
from tests.support.tools import run_tool

PASSWORD = "alice-secret-3141"  # distinctive, so a leak is easy to find
WRONG_PASSWORD = "not-the-password-2718"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return make_authority(tmp_path_factory.mktemp("pki"))


def _mtls(authority: Authority) -> TlsSettings:
    return TlsSettings(
        cert=str(authority.server.cert),
        key=str(authority.server.key),
        client_ca=str(authority.ca),
    )


@pytest.mark.kafka
async def test_mtls_grpcurl_with_a_client_certificate_and_refusals_without(
    kafka_broker: LocalKafka, fresh_topic: str, authority: Authority
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    settings = settings.model_copy(update={"tls": _mtls(authority)})
    body = json.dumps({"customer_name": "Tess", "coffee_type": "Latte"})
    method = "coffee.orders.v1.OrderService/PlaceOrder"
    ca = ("-cacert", str(authority.ca))
    client = ("-cert", str(authority.client.cert), "-key", str(authority.client.key))
    stranger = ("-cert", str(authority.stranger.cert), "-key", str(authority.stranger.key))
    async with running_producer(settings) as address:

        def grpcurl(*arguments: str) -> subprocess.CompletedProcess[str]:
            return run_tool("grpcurl", *arguments, "-d", body, address, method)

        placed = await asyncio.to_thread(grpcurl, *ca, *client)
        no_cert = await asyncio.to_thread(grpcurl, *ca)
        wrong_ca_cert = await asyncio.to_thread(grpcurl, *ca, *stranger)
        plaintext = await asyncio.to_thread(grpcurl, "-plaintext")
    assert placed.returncode == 0, placed.stderr
    assert json.loads(placed.stdout)["topic"] == fresh_topic
    for refused in (no_cert, wrong_ca_cert, plaintext):
        assert refused.returncode != 0
        assert "order_id" not in refused.stdout


@pytest.mark.kafka
async def test_python_client_cli_and_go_client_over_tls(
    kafka_broker: LocalKafka, fresh_topic: str, tmp_path: Path, authority: Authority
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    producing = producer_settings(bootstrap, topic=fresh_topic).model_copy(
        update={"tls": _mtls(authority)}
    )
    server_only = TlsSettings(cert=str(authority.server.cert), key=str(authority.server.key))
    consuming = consumer_settings(bootstrap, f"g-{fresh_topic}", topic=fresh_topic).model_copy(
        update={"tls": server_only}
    )
    credentials = tls_credentials(
        str(authority.ca), str(authority.client.cert), str(authority.client.key)
    )
    async with (
        running_producer(producing) as producer,
        running_consumer(consuming) as consumer,
    ):
        with CoffeeOrdersClient(producer, consumer, credentials=credentials) as client:
            placed = await asyncio.to_thread(client.place_order, "Una", "Mocha")
            status = await asyncio.to_thread(client.status)
        assert placed.topic == fresh_topic and status.topic == fresh_topic

        without = tls_credentials(str(authority.ca))  # TLS but no client certificate
        with (
            CoffeeOrdersClient(producer, credentials=without) as client,
            pytest.raises(RejectedOrder) as refused,
        ):
            await asyncio.to_thread(client.place_order, "Una", "Mocha", None, 5)
        # Refused at the handshake; the client's waitForReady holds the call until its deadline.
        assert refused.value.code in {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        }

        tls_flags = ["--tls-ca", str(authority.ca)]
        client_flags = [
            "--tls-cert",
            str(authority.client.cert),
            "--tls-key",
            str(authority.client.key),
        ]
        ordered = await asyncio.to_thread(
            RunningCommand.run_cli,
            *("order", "--customer", "Vi", "--coffee", "Tea", "--target", producer),
            *tls_flags,
            *client_flags,
        )
        assert ordered.returncode == 0, ordered.stderr
        shown = await asyncio.to_thread(
            RunningCommand.run_cli, "status", "--target", consumer, "--json", *tls_flags
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["topic"] == fresh_topic

        await run_go_test(
            producer,
            consumer,
            {
                "COFFEE_TLS_CA": str(authority.ca),
                "COFFEE_TLS_CLIENT_CERT": str(authority.client.cert),
                "COFFEE_TLS_CLIENT_KEY": str(authority.client.key),
            },
        )


def test_incomplete_tls_settings_stop_the_service_with_exit_2(authority: Authority) -> None:
    result = RunningCommand.run_cli("producer", "--tls-cert", str(authority.server.cert))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "coffee-orders producer: error: invalid setting tls (from command line): "
        "tls cert and key go together: give both or neither"
    ]


@pytest.mark.kafka
async def test_a_10_mb_request_is_refused_and_the_server_stays_healthy(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address:
        huge = orders_pb2.PlaceOrderRequest(customer_name="x" * 10_000_000, coffee_type="Latte")
        async with grpc.aio.insecure_channel(
            address, options=[("grpc.max_send_message_length", 20_000_000)]
        ) as channel:
            place = channel.unary_unary(
                "/coffee.orders.v1.OrderService/PlaceOrder",
                request_serializer=orders_pb2.PlaceOrderRequest.SerializeToString,
                response_deserializer=orders_pb2.PlaceOrderResponse.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await place(huge, timeout=30)
            big_metadata = (("x-padding", "y" * 64_000),)
            with pytest.raises(grpc.aio.AioRpcError) as too_much_metadata:
                await place(order(), metadata=big_metadata, timeout=30)
            after = await place(order(), timeout=30)
        assert await health_status(address) == 1  # SERVING
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert too_much_metadata.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert after.offset >= 0


_PADDING = "x-padding"
_ENTRY_OVERHEAD = 32  # HTTP/2 counts each header as name + value + 32 bytes (RFC 7541 4.1)


@pytest.mark.kafka
async def test_metadata_up_to_16_kib_is_accepted_and_a_byte_more_always_refused(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    """One limit, MAX_METADATA_BYTES, with no band in which gRPC refuses at random.

    The limit counts every header of the request, the ones gRPC sends itself (path, authority,
    user-agent, ...) included, so the test finds the largest padding header the producer takes,
    checks that what gRPC adds is a plausible few hundred bytes, and sends each size many times.
    Calls carry no deadline (a grpc-timeout header's length varies by a few bytes from call to
    call); asyncio bounds them instead.
    """
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    async with running_producer(settings) as address, grpc.aio.insecure_channel(address) as channel:
        place = channel.unary_unary(
            "/coffee.orders.v1.OrderService/PlaceOrder",
            request_serializer=orders_pb2.PlaceOrderRequest.SerializeToString,
            response_deserializer=orders_pb2.PlaceOrderResponse.FromString,
        )

        async def outcome(*values: int) -> str:
            """OK, or the status code of one call with a padding header of each value's size."""
            metadata = tuple((f"{_PADDING}-{i}", "y" * size) for i, size in enumerate(values))
            try:
                async with asyncio.timeout(30):
                    await place(order(), metadata=metadata)
            except grpc.aio.AioRpcError as refused:
                return refused.code().name
            return "OK"

        async def outcomes(*values: int, times: int = 10) -> set[str]:
            return {await outcome(*values) for _ in range(times)}

        accepted, refused = 0, 20 * 1024  # padding sizes known to be accepted and refused
        while refused - accepted > 1:
            middle = (accepted + refused) // 2
            if await outcome(middle) == "OK":
                accepted = middle
            else:
                refused = middle
        grpc_own = MAX_METADATA_BYTES - (accepted + len(f"{_PADDING}-0") + _ENTRY_OVERHEAD)
        print(f"largest padding accepted {accepted} B; gRPC's own headers {grpc_own} B")
        assert 100 < grpc_own < 1024, grpc_own  # the limit is the whole 16 KiB, nothing else

        assert await outcomes(accepted) == {"OK"}  # at the limit: 16 KiB in all
        assert await outcomes(accepted - 1024) == {"OK"}  # under it
        assert await outcomes(accepted + 1) == {"RESOURCE_EXHAUSTED"}  # a byte over it
        assert await outcomes(accepted + 1024) == {"RESOURCE_EXHAUSTED"}  # 1 KiB over it
        assert await outcomes(20 * 1024) == {"RESOURCE_EXHAUSTED"}  # the 20 KiB that got in
        assert await outcomes(*[1024] * 20) == {"RESOURCE_EXHAUSTED"}  # 20 KiB in 20 headers
        after = await place(order(), timeout=30)
        assert after.offset >= 0
        assert await health_status(address) == 1  # SERVING


def _sasl(cluster: LocalKafka, mechanism: str, password: str) -> KafkaSettings:
    return KafkaSettings(
        brokers=tuple(cluster.sasl_bootstrap_servers.split(",")),
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username="alice",
        sasl_password=password,  # type: ignore[arg-type]
        delivery_timeout_ms=5000,
    )


@pytest.mark.kafka
@pytest.mark.cluster
async def test_sasl_plain_and_scram_with_the_right_credentials(
    kafka_cluster_factory: Callable[..., LocalKafka],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders")
    cluster = kafka_cluster_factory(nodes=1, sasl_users={"alice": PASSWORD})
    producing = producer_settings(cluster.bootstrap_servers).model_copy(
        update={"kafka": _sasl(cluster, "PLAIN", PASSWORD)}
    )
    consuming = consumer_settings(cluster.bootstrap_servers, "sasl-group").model_copy(
        update={"kafka": _sasl(cluster, "SCRAM-SHA-256", PASSWORD)}
    )
    async with (
        running_producer(producing) as producer,
        running_consumer(consuming) as consumer,
    ):
        with CoffeeOrdersClient(producer, consumer) as client:
            placed = await asyncio.to_thread(client.place_order, "Sasl", "Latte")

        async def processed() -> bool:
            return placed.order_id in brewed_order_ids(caplog.records)

        await async_wait_until(processed, 60, "the order processed over SCRAM")
        status = await consumer_status(consumer)
    assert PASSWORD not in caplog.text and PASSWORD not in str(status)


@pytest.mark.kafka
@pytest.mark.cluster
async def test_wrong_sasl_password_is_clear_and_never_shown(
    kafka_cluster_factory: Callable[..., LocalKafka],
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    cluster = kafka_cluster_factory(nodes=1, sasl_users={"alice": PASSWORD})
    port, status_port = free_port_pair(), free_port_pair()
    password_file = tmp_path / "password"
    password_file.write_text(WRONG_PASSWORD + "\n")
    env = {
        "KAFKA_BROKERS": cluster.sasl_bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "alice",
        "KAFKA_SASL_PASSWORD_FILE": str(password_file),
    }
    logs = [tmp_path / "producer.log", tmp_path / "consumer.log"]
    for log in logs:
        show_logs_on_failure(log)
    producer = RunningCommand(logs[0], "producer", "--listen", f"127.0.0.1:{port}", env=env)
    consumer = RunningCommand(logs[1], "consumer", "--listen", f"127.0.0.1:{status_port}", env=env)
    try:
        await asyncio.to_thread(producer.wait_for_output, "producer listening")
        await asyncio.to_thread(consumer.wait_for_output, "consumer status server listening")
        await asyncio.to_thread(producer.wait_for_output, "Kafka refused the credentials")
        assert await health_status(f"127.0.0.1:{port}") == 2  # NOT_SERVING
        with (
            CoffeeOrdersClient(f"127.0.0.1:{port}") as client,
            pytest.raises(RejectedOrder) as refused,
        ):
            await asyncio.to_thread(client.place_order, "Mal", "Latte", None, 10)
        assert refused.value.code is grpc.StatusCode.PERMISSION_DENIED
        assert "credentials" in refused.value.message

        async def degraded() -> bool:
            status = await consumer_status(f"127.0.0.1:{status_port}")
            return "refused the credentials" in str(status)

        await async_wait_until(degraded, 30, "the consumer reports the refused credentials")
        status_text = str(await consumer_status(f"127.0.0.1:{status_port}"))
    finally:
        producer.stop(signal.SIGTERM)
        consumer.stop(signal.SIGTERM)
    for text in (producer.output(), consumer.output(), status_text, refused.value.message):
        assert WRONG_PASSWORD not in text and PASSWORD not in text
