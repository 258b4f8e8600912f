"""Kafka over TLS: mutual TLS and SASL_SSL end to end, and each way TLS or SASL can fail.

One broker started by ``coffee-orders kafka up --tls`` serves the whole module: an SSL listener
that requires client certificates and a SASL_SSL listener (PLAIN, SCRAM-SHA-512). Broken broker
certificates are swapped in and out at run time, as an operator would fix them: the services
must recover without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee_orders_client import CoffeeOrdersClient
from coffee_orders_common.kafka_config import producer_config
from coffee_orders_common.kafka_errors import RepeatedErrorFilter
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.logs import RepeatFilter, redact
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.certs import LOCAL_HOSTS, CertificateAuthority, Pair
from coffee_orders_localkafka.operations import replace_certificate, set_scram_password
from confluent_kafka import KafkaError
from grpc_health.v1 import health_pb2

from tests.support.kafka_io import Record, consume_all, produce_records
from tests.support.load import topic_keys
from tests.support.processes import free_port_pair, free_port_run
from tests.support.report import account
from tests.support.secure_kafka import kafka_settings, listener_environment, services_on
from tests.support.services import (
    brewed_order_ids,
    consumer_status,
    health_status,
    order,
    order_client,
    running_consumer,
    running_producer,
)

pytestmark = pytest.mark.kafka
USER = "alice"
WRONG_PASSWORD = "not-the-password-2718"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TlsKafka:
    cluster: LocalKafka
    printed: str  # what `kafka up --tls` wrote on stdout

    @property
    def password(self) -> str:
        path = self.cluster.client_settings("SASL_SSL").sasl_password_file
        assert path is not None
        return Path(path).read_text().strip()

    @property
    def client_key_line(self) -> str:
        """A line of the client's private key, to look for in logs."""
        return self.cluster.tls.client_key.read_text().splitlines()[1]

    def new_topic(self) -> str:
        name = f"tls_{uuid.uuid4().hex[:10]}"
        self.cluster.ensure_topics([name, f"{name}.dlq"], partitions=3)
        return name

    def certificate(self, stem: str, hosts: tuple[str, ...] = LOCAL_HOSTS, **how: bool) -> Pair:
        """A broker certificate from the cluster's own CA (``expired=True`` for a stale one)."""
        authority = CertificateAuthority(self.cluster.tls.folder)
        return authority.issue(stem, "kafka-node-1", hosts=hosts, client=True, **how)


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsKafka]:
    data_dir = tmp_path_factory.mktemp("kafka-tls")
    port = free_port_run(4)  # PLAINTEXT, controller, SSL, SASL_SSL
    arguments = ["kafka", "up", "--tls", "--port", str(port), "--data-dir", str(data_dir)]
    try:
        up = RunningCommand.run_cli(*arguments, "--sasl-user", USER, timeout=240)
        log = data_dir / "node-1" / "server.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        assert up.returncode == 0, up.stderr + tail
        yield TlsKafka(LocalKafka(data_dir), up.stdout)
    finally:
        LocalKafka(data_dir).down()


@pytest.fixture(autouse=True)
def _broker_log_on_failure(
    request: pytest.FixtureRequest, show_logs_on_failure: Callable[[Path], None]
) -> None:
    if "tls_kafka" in request.fixturenames:
        broker: TlsKafka = request.getfixturevalue("tls_kafka")
        for path in broker.cluster.log_paths():
            show_logs_on_failure(path)


@pytest.fixture
def log_like_production(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture INFO and up, with librdkafka's lines filtered as `configure_logging` does."""
    caplog.set_level(logging.INFO)
    librdkafka = logging.getLogger("librdkafka")
    kept = librdkafka.filters[:]
    librdkafka.filters[:] = [RepeatFilter()]
    try:
        yield caplog
    finally:
        librdkafka.filters[:] = kept


# ---- kafka up --tls ----------------------------------------------------------------------------


def test_kafka_up_tls_prints_client_settings_and_keeps_them_in_env_files(
    tls_kafka: TlsKafka,
) -> None:
    cluster = tls_kafka.cluster
    lines = tls_kafka.printed.splitlines()
    assert lines[0] == cluster.bootstrap_servers
    for listener in ("SSL", "SASL_SSL"):
        expected = cluster.client_settings(listener).environment()
        env_file = cluster.data_dir / f"{listener.lower()}.env"
        assert f"# {listener} listener (also in {env_file}):" in lines
        in_file = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert in_file == expected
        assert all(f"{name}={value}" in lines for name, value in expected.items())
        for name in ("KAFKA_SSL_CA_LOCATION", "KAFKA_SSL_CERTIFICATE_LOCATION"):
            if name in expected:
                assert Path(expected[name]).read_text().startswith("-----BEGIN CERTIFICATE")
    ssl_env = cluster.client_settings("SSL").environment()
    assert {"KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION"} <= set(ssl_env)
    sasl_env = cluster.client_settings("SASL_SSL").environment()
    assert sasl_env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    password_file = Path(sasl_env["KAFKA_SASL_PASSWORD_FILE"])
    assert password_file.stat().st_mode & 0o077 == 0
    assert tls_kafka.password not in tls_kafka.printed
    status = RunningCommand.run_cli("kafka", "status", "--data-dir", str(cluster.data_dir))
    node = cluster.nodes[0]
    assert f"SSL 127.0.0.1:{node.ssl_port}, SASL_SSL 127.0.0.1:{node.sasl_ssl_port}" in (
        status.stdout
    )


# ---- orders over TLS ---------------------------------------------------------------------------

FLOWS = {
    "mutual TLS": ("SSL", {}),
    "SASL_SSL PLAIN": ("SASL_SSL", {"KAFKA_SASL_MECHANISM": "PLAIN"}),
    "SASL_SSL SCRAM-SHA-512": ("SASL_SSL", {}),
}


@pytest.mark.parametrize("flow", FLOWS)
async def test_orders_and_dead_letters_flow_over_tls(
    tls_kafka: TlsKafka, flow: str, tmp_path: Path, log_like_production: pytest.LogCaptureFixture
) -> None:
    listener, env = FLOWS[flow]
    cluster = tls_kafka.cluster
    topic = tls_kafka.new_topic()
    kafka = kafka_settings(cluster, listener, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=topic, **env)
    producing, consuming = services_on(kafka, tmp_path)
    bad: Record = (b"bad-1", b"not json at all", None)
    async with running_consumer(consuming) as consumer, running_producer(producing) as producer:
        assert await health_status(producer) == SERVING
        with CoffeeOrdersClient(producer, consumer) as client:
            placed = await asyncio.to_thread(client.place_order, "Tls", "Latte")
        await asyncio.to_thread(produce_records, cluster.bootstrap_servers, topic, [bad])

        async def processed_and_dead_lettered() -> bool:
            status = await consumer_status(consumer)
            brewed = placed.order_id in brewed_order_ids(log_like_production.records)
            return brewed and status.counters.dead_lettered == 1

        await async_wait_until(processed_and_dead_lettered, 60, "the order and the bad message")
        status = await consumer_status(consumer)
    copies = await asyncio.to_thread(consume_all, cluster.bootstrap_servers, f"{topic}.dlq", 1)
    assert [m.value() for m in copies] == [bad[1]]
    keys = await asyncio.to_thread(topic_keys, cluster.bootstrap_servers, topic)
    figures = account(
        f"12. {flow}: an order and a bad message end to end",
        1,
        [placed.order_id],
        [k for k in keys if k != "bad-1"],
        brewed_order_ids(log_like_production.records),
        {},
        dead_lettered=status.counters.dead_lettered,
    )
    assert figures["lost"] == 0
    assert status.state == status_pb.CONSUMER_STATE_RUNNING
    for secret in (tls_kafka.password, tls_kafka.client_key_line):
        assert secret not in log_like_production.text and secret not in str(status)


def test_benchmark_kafka_limit_runs_over_sasl_ssl(tls_kafka: TlsKafka) -> None:
    topic = tls_kafka.new_topic()
    env = listener_environment(tls_kafka.cluster, "SASL_SSL")
    command = [sys.executable, "-m", "bench.kafka_limit", "--topic", topic, "--in-flight", "8"]
    finished = subprocess.run(
        [*command, "--orders", "200"],
        cwd=ROOT,
        env={**_environ_without_kafka(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["ok"] == 200


def _environ_without_kafka() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}


# ---- failures ----------------------------------------------------------------------------------


@dataclass
class Failing:
    """Producer and consumer started against a failing listener, and what they said."""

    producer: str
    consumer: str
    caplog: pytest.LogCaptureFixture

    def errors(self) -> list[str]:
        """The producer's ERROR lines: the one that says what is wrong."""
        return [
            r.getMessage()
            for r in self.caplog.records
            if r.name == "coffee_orders.producer" and r.levelno >= logging.ERROR
        ]

    async def startup_line(self) -> str:
        """The producer's one ERROR line (waited for: the first check may only say
        "unreachable" when the handshake's error came after its timeout)."""

        async def logged() -> list[str]:
            return self.errors()

        lines = await async_wait_until(logged, 30, "the producer's ERROR line")
        assert len(lines) == 1, lines
        return lines[0]

    def noise(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.caplog.records if r.levelno >= 30]

    def assert_quiet(self) -> None:
        """Bounded, not a stream: each of the five Kafka clients (producer, its health watch,
        consumer, its dead-letter producer and watch) says each distinct problem at most once
        per 30 s, librdkafka's own line included."""
        noise = self.noise()
        assert len(noise) <= 20, "\n".join(noise)


@contextlib.asynccontextmanager
async def _failing_services(
    kafka: KafkaSettings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Failing]:
    producing, consuming = services_on(kafka, tmp_path)
    async with running_consumer(consuming) as consumer, running_producer(producing) as producer:
        yield Failing(producer, consumer, caplog)


async def _refused_at_once(address: str) -> grpc.aio.AioRpcError:
    """PlaceOrder without client retries: the status the producer answers, and fast."""
    async with order_client(address) as client:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.PlaceOrder(order(request_id=f"refused-{uuid.uuid4()}"), timeout=10)
    # Anything near the 10 s delivery timeout means it waited for one; below is a loaded machine.
    assert time.monotonic() - started < 7.0, "refused at once, not after a delivery timeout"
    return refused.value


async def _degraded_with(address: str, reason: str) -> status_pb.GetStatusResponse:
    async def degraded() -> status_pb.GetStatusResponse | None:
        status = await consumer_status(address)
        reasons = [e.message for e in status.recent_errors]
        found = status.state == status_pb.CONSUMER_STATE_DEGRADED and any(
            reason in r for r in reasons
        )
        return status if found else None

    return await async_wait_until(degraded, 60, f"the consumer DEGRADED with {reason!r}")


async def _recovers(services: Failing, topic: str) -> tuple[str, float]:
    """Both services SERVING again without a restart, and an order goes all the way through;
    returns its order_id and the seconds until both were SERVING."""
    began = time.monotonic()

    async def serving() -> bool:
        states = [await health_status(a) for a in (services.producer, services.consumer)]
        return states == [SERVING, SERVING]

    await async_wait_until(serving, 60, "both services SERVING after the fix")
    seconds = round(time.monotonic() - began, 2)
    with CoffeeOrdersClient(services.producer) as client:
        placed = await asyncio.to_thread(client.place_order, "After", "Fix")

    async def processed() -> bool:
        status = await consumer_status(services.consumer)
        brewed = placed.order_id in brewed_order_ids(services.caplog.records)
        return brewed and status.state == status_pb.CONSUMER_STATE_RUNNING

    await async_wait_until(processed, 60, f"the order processed after the fix ({topic})")
    return placed.order_id, seconds


async def _account_failure(
    scenario: str,
    tls_kafka: TlsKafka,
    topic: str,
    refused: grpc.aio.AioRpcError,
    placed: str,
    caplog: pytest.LogCaptureFixture,
    recovery_s: float | None,
    **extra: object,
) -> None:
    """The refused order and the one after the fix, for docs/reliability.md."""
    keys = await asyncio.to_thread(topic_keys, tls_kafka.cluster.bootstrap_servers, topic)
    code = refused.code().name
    processed = brewed_order_ids(caplog.records)
    figures = account(scenario, 2, [placed], keys, processed, {code: 1}, recovery_s, **extra)
    assert figures["lost"] == 0 and figures["logged_twice"] == 0


@dataclass(frozen=True)
class Broken:
    """A broker certificate clients cannot trust, and what the startup line says of it."""

    listener: str
    reason: str
    expired: bool = False
    hosts: tuple[str, ...] = LOCAL_HOSTS
    foreign_ca: bool = False

    def certificate(self, tls_kafka: TlsKafka, stem: str) -> Pair:
        if self.foreign_ca:
            folder = tls_kafka.cluster.tls.folder / "foreign"
            foreign = CertificateAuthority(folder, "a foreign CA")
            return foreign.issue(stem, "kafka-node-1", hosts=self.hosts, client=True)
        return tls_kafka.certificate(stem, self.hosts, expired=self.expired)


BROKEN_CERTIFICATES = {
    "expired": Broken("SSL", "certificate has expired", expired=True),
    "another host": Broken("SASL_SSL", "IP address mismatch", hosts=("kafka.example.com",)),
    "unknown CA": Broken("SSL", "unable to get local issuer certificate", foreign_ca=True),
}


@pytest.mark.parametrize("case", BROKEN_CERTIFICATES)
async def test_a_broker_certificate_we_cannot_trust_and_its_fix_without_a_restart(
    tls_kafka: TlsKafka, case: str, tmp_path: Path, log_like_production: pytest.LogCaptureFixture
) -> None:
    broken = BROKEN_CERTIFICATES[case]
    listener, reason = broken.listener, broken.reason
    cluster = tls_kafka.cluster
    topic = tls_kafka.new_topic()
    kafka = kafka_settings(cluster, listener, KAFKA_TOPIC=topic, KAFKA_GROUP_ID=topic)
    bad = broken.certificate(tls_kafka, f"broken-{uuid.uuid4().hex[:6]}")
    await asyncio.to_thread(replace_certificate, cluster, 1, listener, bad)
    fixed = False
    try:
        async with _failing_services(kafka, tmp_path, log_like_production) as services:
            startup = await services.startup_line()
            assert reason in startup and "PlaceOrder answers UNAVAILABLE" in startup
            assert await health_status(services.producer) == NOT_SERVING
            refused = await _refused_at_once(services.producer)
            assert refused.code() is grpc.StatusCode.UNAVAILABLE
            assert "certificate cannot be verified" in (refused.details() or "")
            await _degraded_with(services.consumer, reason)
            assert await health_status(services.consumer) == NOT_SERVING
            services.assert_quiet()

            good = tls_kafka.certificate(f"fixed-{uuid.uuid4().hex[:6]}")
            await asyncio.to_thread(replace_certificate, cluster, 1, listener, good)
            fixed = True
            placed, recovery = await _recovers(services, topic)
        await _account_failure(
            f"13. broker certificate: {case} ({listener})",
            tls_kafka,
            topic,
            refused,
            placed,
            log_like_production,
            recovery,
            note="recovery = a good certificate served to both services SERVING",
        )
    finally:
        if not fixed:
            good = tls_kafka.certificate(f"restored-{uuid.uuid4().hex[:6]}")
            await asyncio.to_thread(replace_certificate, cluster, 1, listener, good)


@pytest.mark.parametrize("certificate", ["none", "from another CA"])
async def test_a_client_certificate_the_broker_refuses_is_permission_denied_until_fixed(
    tls_kafka: TlsKafka,
    certificate: str,
    tmp_path: Path,
    log_like_production: pytest.LogCaptureFixture,
) -> None:
    cluster = tls_kafka.cluster
    topic = tls_kafka.new_topic()
    with_certificate = kafka_settings(cluster, "SSL", KAFKA_TOPIC=topic, KAFKA_GROUP_ID=topic)
    if certificate == "none":
        paths: tuple[str | None, str | None] = (None, None)
        reason = "requires a client certificate and none is configured"
    else:
        foreign = CertificateAuthority(cluster.tls.folder / "foreign", "a foreign CA")
        stranger = foreign.issue("stranger", "stranger", client=True)
        paths = (str(stranger.cert), str(stranger.key))
        reason = "refused the TLS client certificate: TLS alert"
    without = with_certificate.model_copy(
        update={"ssl_certificate_location": paths[0], "ssl_key_location": paths[1]}
    )
    async with _failing_services(without, tmp_path / "without", log_like_production) as services:
        startup = await services.startup_line()
        assert reason in startup and "PlaceOrder answers PERMISSION_DENIED" in startup
        assert await health_status(services.producer) == NOT_SERVING
        refused = await _refused_at_once(services.producer)
        assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
        await _degraded_with(services.consumer, reason)
        services.assert_quiet()
    # The certificate is a setting of the service: given a good one, a restarted service works.
    async with _failing_services(with_certificate, tmp_path / "with", log_like_production) as fix:
        placed, _ = await _recovers(fix, topic)
    await _account_failure(
        f"14. client certificate: {certificate} (SSL, client certificates required)",
        tls_kafka,
        topic,
        refused,
        placed,
        log_like_production,
        None,
        note="recovered by a restart with a trusted certificate",
    )


async def test_a_wrong_sasl_password_over_tls_recovers_once_the_broker_accepts_it(
    tls_kafka: TlsKafka, tmp_path: Path, log_like_production: pytest.LogCaptureFixture
) -> None:
    cluster = tls_kafka.cluster
    topic = tls_kafka.new_topic()
    password_file = tmp_path / "password"
    password_file.write_text(WRONG_PASSWORD + "\n")
    env = {"KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": topic}
    kafka = kafka_settings(cluster, "SASL_SSL", KAFKA_SASL_PASSWORD_FILE=str(password_file), **env)
    reason = "Kafka refused the credentials"
    try:
        async with _failing_services(kafka, tmp_path, log_like_production) as services:
            startup = await services.startup_line()
            assert reason in startup and "SCRAM-SHA-512" in startup
            refused = await _refused_at_once(services.producer)
            assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
            status = await _degraded_with(services.consumer, reason)
            # The broker side is fixed: the user's password is now the one the services have.
            await asyncio.to_thread(set_scram_password, cluster, USER, WRONG_PASSWORD)
            placed, recovery = await _recovers(services, topic)
        texts = [log_like_production.text, str(status), refused.details() or ""]
        for text in texts:
            assert WRONG_PASSWORD not in text and tls_kafka.password not in text
        await _account_failure(
            "15. wrong SASL password over TLS (SASL_SSL, SCRAM-SHA-512)",
            tls_kafka,
            topic,
            refused,
            placed,
            log_like_production,
            recovery,
            note="recovery = password accepted on the broker to both services SERVING",
        )
    finally:
        await asyncio.to_thread(set_scram_password, cluster, USER, tls_kafka.password)


def test_kafka_tls_settings_that_cannot_work_stop_the_service_with_one_line(
    tmp_path: Path,
) -> None:
    authority = CertificateAuthority(tmp_path)
    client = authority.issue("client", "client", client=True)
    other = authority.issue("other", "other", client=True)
    port = free_port_pair()
    base = {"KAFKA_BROKERS": f"127.0.0.1:{port}"}
    cases = {
        "invalid Kafka setting: Failed to create producer: ssl.key.location failed": {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERTIFICATE_LOCATION": str(client.cert),
            "KAFKA_SSL_KEY_LOCATION": str(other.key),  # not this certificate's key
        },
        "TLS settings need security_protocol SSL or SASL_SSL, not PLAINTEXT": {
            "KAFKA_SSL_CA_LOCATION": str(authority.cert_path)
        },
        "ssl_certificate_location and ssl_key_location go together": {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERTIFICATE_LOCATION": str(client.cert),
        },
        "security_protocol SASL_SSL needs sasl_mechanism": {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
        f"cannot read {tmp_path}/missing.pem: No such file or directory": {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_LOCATION": str(tmp_path / "missing.pem"),
        },
    }
    for expected, env in cases.items():
        result = RunningCommand.run_cli(
            "producer",
            "--listen",
            f"127.0.0.1:{free_port_pair()}",
            env={**_environ_without_kafka(), **base, **env},
        )
        # Settings fail before logging starts; a key librdkafka refuses, right after the
        # "starting producer" line.
        errors = [line for line in result.stderr.splitlines() if " error: " in line]
        assert result.returncode == 2, (expected, result.stderr)
        assert len(errors) == 1 and expected in errors[0], (expected, result.stderr)
        assert errors[0].startswith("coffee-orders producer: error: ")
        assert "Traceback" not in result.stderr


def test_a_refused_client_certificate_process_prints_one_clear_line(
    tls_kafka: TlsKafka, tmp_path: Path
) -> None:
    """The producer as a process, with production logging: the line and little else."""
    env = listener_environment(tls_kafka.cluster, "SSL", KAFKA_TOPIC=tls_kafka.new_topic())
    del env["KAFKA_SSL_CERTIFICATE_LOCATION"], env["KAFKA_SSL_KEY_LOCATION"]
    port = free_port_pair()
    producer = RunningCommand(
        tmp_path / "producer.log",
        "producer",
        "--listen",
        f"127.0.0.1:{port}",
        env={**_environ_without_kafka(), **env},
    )
    try:
        # The first check of Kafka is awaited before the server listens: the line is there.
        producer.wait_for_output("producer listening")
        output = producer.output()
    finally:
        producer.stop(signal.SIGTERM)
    errors = [line for line in output.splitlines() if " ERROR coffee_orders." in line]
    assert len(errors) == 1, output
    assert "refused the TLS client certificate" in errors[0]
    loud = [line for line in output.splitlines() if " WARNING " in line or " ERROR " in line]
    assert len(loud) <= 6, output


# ---- settings and error reporting, without a broker -------------------------------------------


def test_tls_settings_reach_librdkafka_and_secrets_stay_masked(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path)
    client = authority.issue("client", "client", client=True)
    password_file = tmp_path / "key-password"
    password_file.write_text("key-secret-577\n")
    kafka = KafkaSettings(
        security_protocol="SSL",
        ssl_ca_location=str(authority.cert_path),
        ssl_certificate_location=str(client.cert),
        ssl_key_location=str(client.key),
        ssl_key_password_file=str(password_file),
    )
    config = producer_config(kafka)
    assert config["ssl.key.password"] == "key-secret-577"
    assert config["ssl.certificate.location"] == str(client.cert)
    assert "key-secret-577" not in str(redact(config)) and "key-secret-577" not in repr(kafka)
    for system_store in ("probe", "/etc/ssl/certs"):  # librdkafka's probe, a directory
        assert KafkaSettings(security_protocol="SSL", ssl_ca_location=system_store)


def test_a_kafka_error_repeated_on_every_reconnect_is_reported_once() -> None:
    errors = RepeatedErrorFilter()
    refused = [
        KafkaError(
            KafkaError._SSL, f"ssl://b:9094/1: SSL handshake failed (after {ms}ms in state X)"
        )
        for ms in (3, 17, 0)
    ]
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    seen = [errors.first_in_window(e) for e in (refused[0], down, refused[1], down, refused[2])]
    assert seen == [True, True, False, False, False]
