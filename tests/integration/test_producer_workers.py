"""``coffee-orders producer --workers 2``: two serving processes on one port, one supervisor."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import orders_pb2_grpc
from coffee_orders_devtools.processes import RunningCommand
from coffee_orders_devtools.waiting import wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.proc_stat import process_gone
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.kafka_io import consume_all
from tests.support.processes import free_port_pair
from tests.support.scrape import scrape
from tests.support.services import order

pytestmark = pytest.mark.kafka
CHANNELS = 16  # separate connections: all 16 on one of two workers has odds of 2 in 65536
ORDERS_PER_CHANNEL = 3
STOP_BOUND_S = 30.0  # grace period 5 s; beyond this the supervisor is hung, not slow


def _children(pid: int) -> list[int]:
    """The supervisor's workers: its children started by multiprocessing's spawn (its other
    child, multiprocessing's resource tracker, is not one)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


def _serving(channel: grpc.Channel) -> bool:
    request = health_pb2.HealthCheckRequest(service="")
    reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _start(log: Path, kafka: LocalKafka, topic: str, *flags: str) -> RunningCommand:
    env = {
        "KAFKA_BROKERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC": topic,
        "COFFEE_GRACE_PERIOD": "5",
    }
    producer = RunningCommand(log, "producer", "--workers", "2", *flags, env=env)
    producer.wait_for_output("producer supervising 2 workers")
    producer.wait_while_running(
        lambda: producer.output().count("producer listening") == 2 or None, 60, "2 workers"
    )
    return producer


@pytest.fixture
def channels() -> Iterator[Callable[[str], list[grpc.Channel]]]:
    with ExitStack() as stack:

        def open_channels(address: str) -> list[grpc.Channel]:
            # A local subchannel pool: each channel its own connection, not a shared one.
            options = [("grpc.use_local_subchannel_pool", 1)]
            return [
                stack.enter_context(grpc.insecure_channel(address, options=options))
                for _ in range(CHANNELS)
            ]

        yield open_channels


def test_two_workers_share_the_port_health_and_metrics_and_stop_on_sigterm(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
    channels: Callable[[str], list[grpc.Channel]],
) -> None:
    metrics_port = free_port_pair()
    show_logs_on_failure(tmp_path / "producer.log")
    producer = _start(
        tmp_path / "producer.log",
        kafka_broker,
        fresh_topic,
        *("--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{metrics_port}"),
    )
    try:
        found = re.search(r"supervising 2 workers on 127\.0\.0\.1:(\d+)", producer.output())
        assert found is not None and int(found.group(1)) != 0
        workers = _children(producer.pid)
        assert len(workers) == 2
        opened = channels(f"127.0.0.1:{found.group(1)}")
        for channel in opened:  # every connection, whichever worker it reached, is SERVING
            wait_until(partial(_serving, channel), 30, "health SERVING")
        for channel in opened:
            stub = orders_pb2_grpc.OrderServiceStub(channel)
            for _ in range(ORDERS_PER_CHANNEL):
                assert stub.PlaceOrder(order(), timeout=30).offset >= 0
        total = CHANNELS * ORDERS_PER_CHANNEL

        samples = scrape(metrics_port)
        placed = {
            dict(labels)["worker"]: value
            for (name, labels), value in samples.items()
            if name == "coffee_orders_placed_total" and dict(labels)["code"] == "OK"
        }
        assert sum(placed.values()) == total
        assert sorted(placed) == ["0", "1"] and all(placed.values()), placed  # both served
        assert samples[("coffee_orders_worker_up", (("worker", "0"),))] == 1
        assert samples[("coffee_orders_worker_up", (("worker", "1"),))] == 1
        assert len(consume_all(kafka_broker.bootstrap_servers, fresh_topic, total)) == total
    finally:
        code = producer.stop(signal.SIGTERM, timeout=STOP_BOUND_S)
    assert code == 0, producer.output()
    wait_until(lambda: all(process_gone(pid) for pid in workers), 10, "no worker left")
    log = producer.output()
    assert log.count("producer stopped") == 2 and "Traceback" not in log


@pytest.fixture
def two_workers(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> Iterator[tuple[RunningCommand, list[int]]]:
    """``producer --workers 2`` on a fixed port, and its two workers' pids."""
    show_logs_on_failure(tmp_path / "producer.log")
    listen = f"127.0.0.1:{free_port_pair()}"
    producer = _start(tmp_path / "producer.log", kafka_broker, fresh_topic, "--listen", listen)
    try:
        yield producer, _children(producer.pid)
    finally:
        producer.stop(signal.SIGKILL, timeout=STOP_BOUND_S)  # only if the test left it running


def test_a_worker_that_dies_takes_the_whole_producer_down(
    two_workers: tuple[RunningCommand, list[int]],
) -> None:
    producer, (killed, other) = two_workers
    os.kill(killed, signal.SIGKILL)
    code = producer.process.wait(STOP_BOUND_S)
    assert code == 70, producer.output()
    assert f"(pid {killed}) exited with -9; stopping the other workers" in producer.output()
    wait_until(lambda: process_gone(other), 10, "the other worker gone too")


def test_sigint_to_the_supervisor_stops_every_worker_and_exits_0(
    two_workers: tuple[RunningCommand, list[int]],
) -> None:
    producer, workers = two_workers
    code = producer.stop(signal.SIGINT, timeout=STOP_BOUND_S)  # a terminal's Ctrl-C
    assert code == 0, producer.output()
    wait_until(lambda: all(process_gone(pid) for pid in workers), 10, "no worker left")
    assert producer.output().count("producer stopped") == 2


def test_workers_stop_when_the_supervisor_is_killed(
    two_workers: tuple[RunningCommand, list[int]],
) -> None:
    producer, workers = two_workers
    os.kill(producer.pid, signal.SIGKILL)  # no chance to forward anything
    producer.process.wait(STOP_BOUND_S)
    wait_until(lambda: all(process_gone(pid) for pid in workers), STOP_BOUND_S, "no worker left")
