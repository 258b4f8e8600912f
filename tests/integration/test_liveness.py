"""A worker that dies or stalls, or a blocked event loop, never leaves a zombie that says SERVING.

Each fault is injected into the real code path (a method patched to raise or hang, a broken
Kafka client call, a handler that blocks the loop) of a service talking to a real broker; the
service must turn NOT_SERVING (readiness and ``liveness``), say why in one log line, (consumer)
report FAILED with the reason, and end with WorkerFailed / exit code 70. A Kafka outage or a
dead-letter topic that cannot take a copy must not trip it. Figures: docs/reliability.md,
"Dead or stuck workers".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import yaml
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee_orders_common import wire
from coffee_orders_common.exit_codes import EXIT_WORKER_FAILED
from coffee_orders_common.grpc_server import LIVENESS_SERVICE
from coffee_orders_common.liveness import Heartbeat, WorkerFailed
from coffee_orders_common.settings import ServiceSettings, SettingsError, load_settings
from coffee_orders_consumer.consume_loop import ConsumeLoop
from coffee_orders_consumer.settings import ConsumerSettings
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import async_wait_until, wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_producer import publisher
from coffee_orders_producer.settings import ProducerSettings
from confluent_kafka import Message, Producer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.health_watch import NOT_SERVING, SERVING, ErrorWatch, HealthWatch
from tests.support.kafka_io import Record, produce_records
from tests.support.load import LoadOutcome, drive, topic_keys
from tests.support.processes import free_port_pair
from tests.support.services import (
    consumer_settings,
    consumer_status,
    errors_by_kind,
    health_status,
    order,
    order_client,
    producer_settings,
    running_consumer,
    running_producer,
)

ROOT = Path(__file__).resolve().parents[2]
# The smallest bound the consumer accepts with a 2 s delivery timeout (a dead-letter wait).
STALL_S = 12.0
DELIVERY_TIMEOUT_MS = 2000
GRACE_S = 5.0
# Generous: detection (at once for a dead worker, STALL_S for a stuck one), the 2 s in which
# the failure stays visible, the grace period, and a loaded machine.
EXIT_BOUND_S = STALL_S + GRACE_S + 30
ORDER = b'{"customer_name":"Kim","coffee_type":"Latte"}'
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)

# Patches a real method of the consume loop so that its first batch holding a message (not
# only Kafka events, which a loaded broker sends too) raises; shared by the `python -c` process
# test (with the CLI's main after it) and `coffee-orders dev` (as a sitecustomize module,
# imported by every Python process started with it on PYTHONPATH).
BREAK_THE_CONSUME_LOOP = """
from coffee_orders_consumer.consume_loop import ConsumeLoop

_handle_batch = ConsumeLoop._handle_batch

def _broken(self, messages):
    if any(message.error() is None for message in messages):
        raise RuntimeError("injected: the consume loop broke")
    _handle_batch(self, messages)

ConsumeLoop._handle_batch = _broken
"""
# A PlaceOrder handler that blocks the event loop (a synchronous call that never returns).
BLOCK_THE_EVENT_LOOP = """
import time
from coffee_orders_producer.servicer import OrderServicer

def _blocking(self, *args, **kwargs):
    time.sleep(3600)

OrderServicer.admit = _blocking
"""
RUN_THE_CLI = """
import sys
from coffee_orders_cli.main import main
sys.exit(main())
"""


def _with(settings: SettingsT, **fields: Any) -> SettingsT:
    """``settings`` with ``fields`` changed, validated again."""
    return type(settings).model_validate({**settings.model_dump(), **fields})


def _producer(bootstrap: str, topic: str) -> ProducerSettings:
    return _with(
        producer_settings(bootstrap, topic=topic),
        worker_stall_timeout_s=STALL_S,
        grace_period_s=GRACE_S,
    )


def _consumer(bootstrap: str, state_dir: Path, topic: str) -> ConsumerSettings:
    settings = consumer_settings(
        bootstrap, f"g-{topic}", topic=topic, delivery_timeout_ms=DELIVERY_TIMEOUT_MS
    )
    return _with(settings, worker_stall_timeout_s=STALL_S, grace_period_s=GRACE_S)


def _records(count: int, prefix: str) -> list[Record]:
    ids = [f"{prefix}-{uuid.uuid4().hex[:8]}-{i}" for i in range(count)]
    return [(oid.encode(), ORDER, wire.order_headers(oid)) for oid in ids]


def _failure_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("worker failed: ")]


def _figures(fault: str, **figures: Any) -> None:
    """Print what was measured (for docs/reliability.md; run with -s to see it)."""
    print(f"liveness figures: {json.dumps({'fault': fault, **figures})}")


def _reported(
    caplog: pytest.LogCaptureFixture,
    failure: WorkerFailed,
    reason: str,
    fault: str,
    moments: tuple[float, float, float],
    **figures: Any,
) -> logging.LogRecord:
    """``reason`` is in WorkerFailed and in one ERROR line; the service ended in the bound.

    ``moments``: the fault, both health names NOT_SERVING, the service ended.
    """
    started, not_serving, ended = moments
    assert reason in str(failure)
    (line,) = _failure_lines(caplog)
    assert reason in line.getMessage() and line.levelno == logging.ERROR
    assert f"exiting with code {EXIT_WORKER_FAILED}" in line.getMessage()
    assert ended - started < EXIT_BOUND_S
    _figures(
        fault,
        to_not_serving_s=round(not_serving - started, 2),
        to_exit_s=round(ended - started, 2),
        **figures,
    )
    return line


class Observed:
    """Health of both names (readiness "" and liveness) followed through Watch streams."""

    def __init__(self, channel: grpc.aio.Channel):
        self.channel = channel
        self.readiness = HealthWatch(channel, "")
        self.liveness = HealthWatch(channel, LIVENESS_SERVICE)

    async def serving(self) -> None:
        await self.readiness.reaches(SERVING, 60)
        await self.liveness.reaches(SERVING, 60)

    async def not_serving_since(self, moment: float, within: float) -> float:
        """Wait until both names are NOT_SERVING; return the later arrival time."""
        ready = await self.readiness.reaches(NOT_SERVING, within, since=moment)
        alive = await self.liveness.reaches(NOT_SERVING, within, since=moment)
        return max(ready, alive)

    async def close(self) -> None:
        await self.readiness.close()
        await self.liveness.close()


@contextlib.asynccontextmanager
async def observing(address: str) -> AsyncIterator[Observed]:
    async with grpc.aio.insecure_channel(address) as channel:
        observed = Observed(channel)
        try:
            yield observed
        finally:
            await observed.close()


async def _failed_status(
    errors: ErrorWatch, address: str, within: float, reason: str
) -> status_pb.GetStatusResponse:
    """The WORKER_FAILED error arrives on the stream; GetStatus then says FAILED and why."""
    error = await errors.first(status_pb.ERROR_KIND_WORKER_FAILED, within)
    assert reason in error.message, error.message
    status = await consumer_status(address)  # the server answers for 2 s after a failure
    assert status.state == status_pb.CONSUMER_STATE_FAILED, status
    assert reason in status.failure_reason, status.failure_reason
    return status


# ---- the consumer ------------------------------------------------------------------------------


def _holds_a_message(batch: list[Message]) -> bool:
    """Not only Kafka events (a loaded broker sends some): the fault waits for the test's order."""
    return any(message.error() is None for message in batch)


async def _consumer_fails(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    reason: str,
    fault: str,
    within: float,
) -> None:
    """Run a consumer whose consume loop has been patched to fail on its first batch."""
    caplog.set_level(logging.INFO, logger="coffee_orders.consumer")
    settings = _consumer(kafka_broker.bootstrap_servers, tmp_path / "state", fresh_topic)
    started = time.monotonic()
    with pytest.raises(WorkerFailed) as failed:
        async with running_consumer(settings) as address, observing(address) as observed:
            await observed.serving()
            errors = await ErrorWatch(observed.channel).subscribed()
            # The fault's moment is before the record is sent: the consumer may take it, fail
            # and turn NOT_SERVING before produce_records has seen Kafka's acknowledgement.
            started = time.monotonic()
            await asyncio.to_thread(
                produce_records, kafka_broker.bootstrap_servers, fresh_topic, _records(1, "f")
            )
            await _failed_status(errors, address, within, reason)
            not_serving = await observed.not_serving_since(started, within)
            await errors.close()
    moments = (started, not_serving, time.monotonic())
    _reported(caplog, failed.value, reason, fault, moments)


@pytest.mark.kafka
async def test_a_consume_loop_that_raises_fails_the_consumer(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: ConsumeLoop, messages: list[Message]) -> None:
        if _holds_a_message(messages):
            raise RuntimeError("injected: the consume loop broke")
        handle_batch(self, messages)

    handle_batch = ConsumeLoop._handle_batch
    monkeypatch.setattr(ConsumeLoop, "_handle_batch", broken)
    await _consumer_fails(
        kafka_broker,
        fresh_topic,
        tmp_path,
        caplog,
        "the consume loop stopped: RuntimeError: injected: the consume loop broke",
        "consume loop raises (in-process)",
        within=30,
    )
    (line,) = _failure_lines(caplog)
    assert line.exc_info is not None, "the traceback of the worker's error goes with the line"


@pytest.mark.kafka
async def test_a_consume_loop_that_hangs_fails_the_consumer(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def stuck(self: ConsumeLoop, messages: list[Message]) -> None:
        if _holds_a_message(messages):
            release.wait(300)  # a batch that never finishes: the thread lives on, no progress
        handle_batch(self, messages)

    handle_batch = ConsumeLoop._handle_batch
    monkeypatch.setattr(ConsumeLoop, "_handle_batch", stuck)
    try:
        await _consumer_fails(
            kafka_broker,
            fresh_topic,
            tmp_path,
            caplog,
            "the consume loop has made no progress for",
            "consume loop hangs (in-process)",
            within=STALL_S + 30,
        )
    finally:
        release.set()  # let the abandoned thread end and close its Kafka consumer


# ---- the producer ------------------------------------------------------------------------------


@pytest.mark.kafka
async def test_a_delivery_report_poller_that_ends_fails_the_producer(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders.producer")
    broken = threading.Event()

    class BreakableProducer(Producer):
        """The real Kafka producer, whose ``poll`` raises once ``broken`` is set."""

        def poll(self, *args: Any) -> int:
            if broken.is_set():
                raise RuntimeError("injected: poll broke")
            return int(super().poll(*args))

    monkeypatch.setattr(publisher, "Producer", BreakableProducer)
    settings = _producer(kafka_broker.bootstrap_servers, fresh_topic)
    reason = "the delivery-report poller stopped: RuntimeError: injected: poll broke"
    with pytest.raises(WorkerFailed) as failed:
        async with (
            running_producer(settings) as address,
            observing(address) as observed,
            order_client(address) as client,
        ):
            await observed.serving()
            placed = await client.PlaceOrder(order(), timeout=30)  # the poller works until...
            assert placed.offset >= 0
            started = time.monotonic()
            broken.set()
            not_serving = await observed.not_serving_since(started, 30)
    moments = (started, not_serving, time.monotonic())
    fault = "delivery-report poller raises (in-process)"
    line = _reported(caplog, failed.value, reason, fault, moments)
    assert str(failed.value) == reason and line.exc_info is not None


@pytest.mark.kafka
async def test_a_delivery_report_poller_that_hangs_fails_the_producer_and_loses_nothing(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders.producer")
    # With an order in flight the poller pauses this long between polls: an hour, so it hangs
    # (without blocking the loop) and the in-flight orders wait for their delivery reports.
    monkeypatch.setattr(publisher, "_BUSY_POLL_S", 3600.0)
    settings = _producer(kafka_broker.bootstrap_servers, fresh_topic)
    outcome, stop = LoadOutcome(), asyncio.Event()
    with pytest.raises(WorkerFailed) as failed:
        async with running_producer(settings) as address, observing(address) as observed:
            await observed.serving()
            started = time.monotonic()
            load = asyncio.create_task(drive(address, 2, stop, outcome, "hung", deadline_s=60))
            not_serving = await observed.not_serving_since(started, STALL_S + 30)
    moments = (started, not_serving, time.monotonic())
    await async_wait_until(lambda: _errors_seen(outcome), 30, "callers refused after the exit")
    stop.set()
    await load
    # The orders in flight while the poller hung were answered by the shutdown's flush: OK, and
    # on the topic. Only calls after that were refused (the producer was going away).
    keys = await asyncio.to_thread(topic_keys, kafka_broker.bootstrap_servers, fresh_topic)
    assert outcome.acknowledged and set(outcome.acknowledged) <= set(keys)
    assert set(outcome.errors) <= {"UNAVAILABLE", "CANCELLED"}, outcome.errors
    slowest = max(outcome.ok_times) - started
    assert slowest > STALL_S, "the hung calls were answered only after the failure"
    _reported(
        caplog,
        failed.value,
        "the delivery-report poller has made no progress for",
        "delivery-report poller hangs under load (in-process)",
        moments,
        sent=outcome.sent,
        acknowledged=len(outcome.acknowledged),
        on_topic=len(set(outcome.acknowledged) & set(keys)),
        errors=dict(outcome.errors),
    )


async def _errors_seen(outcome: LoadOutcome) -> bool:
    return bool(outcome.errors)


@pytest.fixture
def process_exits(monkeypatch: pytest.MonkeyPatch) -> tuple[list[int], threading.Event]:
    """``os._exit`` recorded instead of done, so pytest lives on; the event is set at the first.

    The service then goes on as if the loop had come back: it shuts down and raises WorkerFailed.
    """
    exits: list[int] = []
    exited = threading.Event()

    def exit_recorded(code: int) -> None:
        exits.append(code)
        exited.set()

    monkeypatch.setattr(os, "_exit", exit_recorded)
    return exits, exited


@pytest.mark.kafka
async def test_a_blocked_event_loop_ends_the_process(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    caplog: pytest.LogCaptureFixture,
    process_exits: tuple[list[int], threading.Event],
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders.producer")
    exits, exited = process_exits
    settings = _producer(kafka_broker.bootstrap_servers, fresh_topic)
    with pytest.raises(WorkerFailed) as failed:
        async with running_producer(settings) as address, observing(address) as observed:
            await observed.serving()
            started = time.monotonic()
            exited.wait(STALL_S + 60)  # blocks the event loop, as a synchronous bug would
            exit_at = time.monotonic()
            assert exits and exits[0] == EXIT_WORKER_FAILED, exits
            await observed.not_serving_since(started, 30)  # once the loop runs again
    assert "the event loop has made no progress for" in str(failed.value)
    (line,) = _failure_lines(caplog)
    assert "exiting at once with code 70" in line.getMessage()
    assert STALL_S - 1 <= exit_at - started < STALL_S + 30  # from the last beat, not `started`
    _figures("event loop blocked (in-process)", to_exit_s=round(exit_at - started, 2))


@pytest.mark.kafka
async def test_a_watchdog_that_breaks_ends_the_process(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    process_exits: tuple[list[int], threading.Event],
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders.producer")
    exits, exited = process_exits
    broken = threading.Event()
    silent_for = Heartbeat.silent_for

    def breakable(self: Heartbeat) -> float:  # read by the watchdog thread only
        if broken.is_set():
            raise RuntimeError("injected: the watchdog broke")
        return silent_for(self)

    monkeypatch.setattr(Heartbeat, "silent_for", breakable)
    settings = _producer(kafka_broker.bootstrap_servers, fresh_topic)
    with pytest.raises(WorkerFailed) as failed:
        async with running_producer(settings) as address, observing(address) as observed:
            await observed.serving()
            started = time.monotonic()
            broken.set()
            assert await asyncio.to_thread(exited.wait, 30), "no exit"
            exit_at = time.monotonic()
            assert exits[0] == EXIT_WORKER_FAILED
            await observed.not_serving_since(0.0, 30)
    assert str(failed.value) == "the watchdog stopped: RuntimeError: injected: the watchdog broke"
    (line,) = _failure_lines(caplog)
    assert line.exc_info is not None
    _figures("the watchdog itself raises (in-process)", to_exit_s=round(exit_at - started, 2))


# ---- what must not trip it ------------------------------------------------------------------


@pytest.mark.cluster
async def test_a_kafka_outage_is_readiness_not_liveness(
    kafka_cluster_factory: Callable[..., LocalKafka],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="coffee_orders")
    cluster = kafka_cluster_factory(nodes=1)
    bootstrap = cluster.bootstrap_servers
    async with (
        running_producer(_producer(bootstrap, "coffee_orders")) as producer,
        running_consumer(_consumer(bootstrap, tmp_path, "coffee_orders")) as consumer,
        observing(producer) as producing,
        observing(consumer) as consuming,
    ):
        for observed in (producing, consuming):
            await observed.serving()
        await asyncio.to_thread(cluster.kill_node, 1)
        down_at = time.monotonic()
        for observed in (producing, consuming):
            await observed.readiness.reaches(NOT_SERVING, 30, since=down_at)
        # Longer than twice the stall bound: a worker the outage stalled would be caught by now.
        while time.monotonic() - down_at < 2 * STALL_S + 5:
            for address in (producer, consumer):
                assert await health_status(address, LIVENESS_SERVICE) == SERVING
                assert await health_status(address) == NOT_SERVING
            await asyncio.sleep(1)
        outage = time.monotonic() - down_at
        await asyncio.to_thread(cluster.start_node, 1)
        for observed in (producing, consuming):
            await observed.readiness.reaches(SERVING, 60, since=down_at)
        for observed in (producing, consuming):
            assert set(observed.liveness.statuses()) == {SERVING}
    assert not _failure_lines(caplog)
    _figures("Kafka outage", outage_s=round(outage, 1), liveness="SERVING throughout")


@pytest.mark.kafka
async def test_a_dead_letter_topic_that_cannot_take_a_copy_is_no_stall(
    kafka_broker: LocalKafka, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing dead-letter topic is refused for good: each copy is DEAD_LETTER_FAILED at once,
    the loop goes on, liveness stays SERVING. (A dead-letter leader that is down makes the loop
    wait and retry for longer than the stall bound: tests/integration/test_hostile_records.py
    checks that this trips nothing either.)"""
    caplog.set_level(logging.INFO, logger="coffee_orders.consumer")
    topic = f"nodlq_{uuid.uuid4().hex[:12]}"
    kafka_broker.ensure_topics([topic], partitions=1)  # no <topic>.dlq
    settings = _consumer(kafka_broker.bootstrap_servers, tmp_path, topic)
    async with running_consumer(settings) as address, observing(address) as observed:
        await observed.serving()
        await asyncio.to_thread(
            produce_records, kafka_broker.bootstrap_servers, topic, [(None, b"not json", None)]
        )
        started = time.monotonic()

        async def recorded() -> bool:
            status = await consumer_status(address)
            return errors_by_kind(status).get(status_pb.ERROR_KIND_DEAD_LETTER_FAILED, 0) == 1

        await async_wait_until(recorded, 60, "the copy recorded as DEAD_LETTER_FAILED")
        while time.monotonic() - started < 2 * STALL_S:  # prove a negative: no failure meanwhile
            assert await health_status(address, LIVENESS_SERVICE) == SERVING
            await asyncio.sleep(1)
        assert set(observed.liveness.statuses()) == {SERVING}
    assert not _failure_lines(caplog)


# ---- real processes ----------------------------------------------------------------------------


def _exit_code(command: RunningCommand, within: float) -> int:
    wait_until(lambda: command.process.poll() is not None, within, "the process to exit")
    return int(command.process.returncode)


def _patched_service(
    service: str,
    patch: str,
    env: dict[str, str],
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> tuple[RunningCommand, str]:
    """``coffee-orders <service>`` run by ``python -c``: ``patch``, then the CLI's main."""
    address = f"127.0.0.1:{free_port_pair()}"
    log = tmp_path / f"{service}.log"
    show_logs_on_failure(log)
    program = [sys.executable, "-c", patch + RUN_THE_CLI]
    command = RunningCommand(log, service, "--listen", address, env=env, program=program)
    return command, address


def _failure_lines_of(command: RunningCommand) -> list[str]:
    return [line for line in command.output().splitlines() if " worker failed: " in line]


@pytest.mark.kafka
async def test_a_consumer_process_whose_consume_loop_dies_exits_with_70(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    env = {
        "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
        "KAFKA_TOPIC": fresh_topic,
        "KAFKA_GROUP_ID": f"g-{fresh_topic}",
        "COFFEE_GRACE_PERIOD": str(GRACE_S),
    }
    consumer, address = _patched_service(
        "consumer", BREAK_THE_CONSUME_LOOP, env, tmp_path, show_logs_on_failure
    )
    try:
        await asyncio.to_thread(consumer.wait_for_output, "partitions assigned")
        async with observing(address) as observed:
            await observed.serving()
            errors = await ErrorWatch(observed.channel).subscribed()
            started = time.monotonic()  # before the record is sent, as in _consumer_fails
            await asyncio.to_thread(
                produce_records, kafka_broker.bootstrap_servers, fresh_topic, _records(1, "p")
            )
            reason = "the consume loop stopped: RuntimeError: injected: the consume loop broke"
            await _failed_status(errors, address, 30, reason)
            not_serving = await observed.not_serving_since(started, 30)
            await errors.close()
        code = await asyncio.to_thread(_exit_code, consumer, EXIT_BOUND_S)
        ended = time.monotonic()
    finally:
        consumer.stop(signal.SIGKILL)
    assert code == EXIT_WORKER_FAILED, consumer.output()
    lines = _failure_lines_of(consumer)
    assert len(lines) == 1 and reason in lines[0], lines
    assert "Traceback" in consumer.output()  # the error's traceback follows that line
    _figures(
        "consume loop raises (real process)",
        to_not_serving_s=round(not_serving - started, 2),
        to_exit_s=round(ended - started, 2),
        exit_code=code,
    )


@pytest.mark.kafka
async def test_a_producer_process_whose_event_loop_blocks_exits_with_70(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    env = {
        "KAFKA_BROKERS": kafka_broker.bootstrap_servers,
        "KAFKA_TOPIC": fresh_topic,
        "COFFEE_WORKER_STALL_TIMEOUT": str(STALL_S),
    }
    producer, address = _patched_service(
        "producer", BLOCK_THE_EVENT_LOOP, env, tmp_path, show_logs_on_failure
    )
    try:
        await asyncio.to_thread(producer.wait_for_output, "producer listening")
        await async_wait_until(lambda: _serving(address), 30, "SERVING")
        async with order_client(address) as client:
            placing = asyncio.ensure_future(client.PlaceOrder(order(), timeout=STALL_S + 60))
            started = time.monotonic()
            # The handler blocks the loop: nothing on it answers, health checks time out.
            await async_wait_until(lambda: _health_times_out(address), 30, "checks unanswered")
            code = await asyncio.to_thread(_exit_code, producer, EXIT_BOUND_S)
            ended = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as lost_connection:
                await placing
            assert lost_connection.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        producer.stop(signal.SIGKILL)
    assert code == EXIT_WORKER_FAILED, producer.output()
    lines = _failure_lines_of(producer)
    assert len(lines) == 1 and "the event loop has made no progress" in lines[0], lines
    assert STALL_S - 1 <= ended - started < EXIT_BOUND_S
    _figures("event loop blocked (real process)", to_exit_s=round(ended - started, 2))


async def _serving(address: str) -> bool:
    with contextlib.suppress(grpc.aio.AioRpcError):
        return bool(await health_status(address) == SERVING)
    return False


async def _health_times_out(address: str) -> bool:
    """True once a liveness check gets no answer within a second (the loop is blocked)."""
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=LIVENESS_SERVICE), timeout=1
            )
        except grpc.aio.AioRpcError as error:
            return error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    return False


@pytest.mark.kafka
def test_dev_stops_everything_and_exits_70_when_a_worker_fails(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> None:
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(BREAK_THE_CONSUME_LOOP)
    port, producer_port, consumer_port = free_port_pair(), free_port_pair(), free_port_pair()
    data_dir = tmp_path / "dev-kafka"
    show_logs_on_failure(tmp_path / "dev.log")
    dev = RunningCommand(
        tmp_path / "dev.log",
        *("dev", "--port", str(port), "--data-dir", str(data_dir)),
        env={
            "PYTHONPATH": str(inject),
            "COFFEE_PRODUCER_LISTEN": f"127.0.0.1:{producer_port}",
            "COFFEE_CONSUMER_LISTEN": f"127.0.0.1:{consumer_port}",
        },
    )
    try:
        dev.wait_for_output(r"consumer \| .* partitions assigned", timeout=180)
        produce_records(f"127.0.0.1:{port}", "coffee_orders", _records(1, "dev"))
        code = _exit_code(dev, EXIT_BOUND_S + 30)
    finally:
        dev.stop(signal.SIGKILL)
    output = dev.output()
    assert code == EXIT_WORKER_FAILED, output
    assert "consumer exited with code 70 (a worker failed" in output
    assert "producer stopped undelivered=0" in output
    assert "stopped Kafka (1 process(es))" in output


# ---- settings and deployment files ----------------------------------------------------------


def test_the_stall_bound_defaults_to_60_s_and_must_outlast_a_dead_letter_wait() -> None:
    assert load_settings(ConsumerSettings, environ={}).worker_stall_timeout_s == 60
    assert load_settings(ProducerSettings, environ={}).worker_stall_timeout_s == 60
    env = {"COFFEE_WORKER_STALL_TIMEOUT": "15"}
    assert load_settings(ProducerSettings, environ=env).worker_stall_timeout_s == 15
    with pytest.raises(SettingsError) as short:
        load_settings(ConsumerSettings, environ=env)
    assert str(short.value) == (
        "invalid setting worker_stall_timeout_s (from environment variable "
        "COFFEE_WORKER_STALL_TIMEOUT): must be at least kafka.delivery_timeout_ms + 10 s (20 s): "
        "a dead-letter copy may take that long; got 15"
    )
    with pytest.raises(SettingsError, match="greater than or equal to 10"):
        load_settings(ProducerSettings, environ={"COFFEE_WORKER_STALL_TIMEOUT": "5"})


def test_probes_restart_on_liveness_and_route_on_readiness() -> None:
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        (deployment,) = [
            d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "Deployment"
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE, path
        assert "service" not in container["readinessProbe"]["grpc"], path
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name in ("producer", "consumer"):
        assert compose["services"][name]["restart"] == "on-failure", name
