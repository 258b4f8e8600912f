"""Fixtures that start real Apache Kafka brokers on free ports, and logs printed on failure."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.cluster import BROKER_SESSION_TIMEOUT_MS
from coffee_orders_localkafka.cluster import on_free_ports as new_cluster

__all__ = ["new_cluster"]  # tests import it from here

_LOG_TAIL_LINES = 60
_logs_key = pytest.StashKey[list[Path]]()


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the processes the tests start, however the suite itself was started.

    A shell starts a background job (``make test &``, ``nohup``) with SIGINT ignored, and a
    child inherits that through exec: its Python then never raises KeyboardInterrupt, and the
    tests that stop a command with SIGINT (``status --watch``) wait for it in vain. A handler,
    unlike an ignored signal, is reset to the default at exec.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One single-node broker shared by the whole test run."""
    cluster = new_cluster(tmp_path_factory.mktemp("kafka-session"))
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(autouse=True)
def in_process_exit_fails_the_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A service run in-process whose watchdog ends "the process" (``os._exit``) would end the
    whole test run without a report: the call is recorded instead and fails this test (a hung
    shutdown then meets pytest's timeout, which shows where it hangs). Tests that expect the
    exit record it with a fixture of their own."""
    codes: list[int] = []
    monkeypatch.setattr(os, "_exit", codes.append)
    yield
    assert not codes, f"a service run in-process called os._exit({codes[0]})"


@pytest.fixture
def show_logs_on_failure(request: pytest.FixtureRequest) -> Callable[[Path], None]:
    """Register a log file whose tail is printed if this test fails."""
    paths: list[Path] = request.node.stash.setdefault(_logs_key, [])
    return paths.append


@pytest.fixture
def kafka_cluster_factory(
    tmp_path: Path, show_logs_on_failure: Callable[[Path], None]
) -> Iterator[Callable[..., LocalKafka]]:
    """Start a fresh 1- or 3-node cluster for one test; its brokers may be killed and restarted."""
    clusters: list[LocalKafka] = []

    def start(
        nodes: int = 1,
        topic: str = "coffee_orders",
        sasl_users: dict[str, str] | None = None,
        broker_session_timeout_ms: int = BROKER_SESSION_TIMEOUT_MS,
        broker_properties: dict[str, str] | None = None,
    ) -> LocalKafka:
        cluster = new_cluster(
            tmp_path / f"cluster-{len(clusters)}",
            nodes,
            topic,
            sasl_users,
            broker_session_timeout_ms=broker_session_timeout_ms,
            broker_properties=broker_properties,
        )
        clusters.append(cluster)
        for path in cluster.log_paths():
            show_logs_on_failure(path)
        cluster.up()
        return cluster

    yield start
    for cluster in clusters:
        cluster.down()


@pytest.fixture(autouse=True)
def _session_broker_logs(request: pytest.FixtureRequest) -> None:
    if "kafka_broker" in request.fixturenames:
        broker: LocalKafka = request.getfixturevalue("kafka_broker")
        request.node.stash.setdefault(_logs_key, []).extend(broker.log_paths())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for path in item.stash.get(_logs_key, []):
            try:
                tail = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
            except OSError as exc:
                tail = [f"(cannot read: {exc})"]
            report.sections.append((f"log {path}", "\n".join(tail)))
    return report


@pytest.fixture
def fresh_topic(kafka_broker: LocalKafka) -> str:
    """A new 3-partition topic (and its .dlq) on the shared broker, for this test alone."""
    name = f"orders_{uuid.uuid4().hex[:12]}"
    kafka_broker.ensure_topics([name, f"{name}.dlq"], partitions=3)
    return name
