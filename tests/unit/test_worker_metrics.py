"""``producer --workers N``'s metrics (no broker): spawned processes in prometheus_client's
multiprocess mode, read by the supervisor's collector one worker at a time."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from coffee_orders_producer.metrics import MULTIPROC_DIR
from coffee_orders_producer.worker_metrics import WorkersCollector
from prometheus_client import CollectorRegistry

BOUND_S = 60.0  # a spawned interpreter's start on a loaded machine
SPAWN = multiprocessing.get_context("spawn")


def _worker(amount: int, ready: Event, stop: Event) -> None:
    """A stand-in worker: counts ``amount`` orders and sets a gauge, then waits for ``stop``."""
    from prometheus_client import Counter, Gauge  # in multiprocess mode: the env says so

    registry = CollectorRegistry()
    Counter("orders", "Orders", ["code"], registry=registry).labels("OK").inc(amount)
    Gauge("in_flight", "Orders in flight", registry=registry).set(amount * 10)
    ready.set()
    stop.wait(BOUND_S)


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The multiprocess directory, in the environment the workers are spawned with."""
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    return tmp_path


@pytest.fixture
def spawn(directory: Path) -> Iterator[Callable[[int], tuple[BaseProcess, Event]]]:
    """Starts a stand-in worker that counted ``amount``; returns it and the event that stops it
    (all stopped and joined at the end)."""
    started: list[tuple[BaseProcess, Event]] = []

    def start(amount: int) -> tuple[BaseProcess, Event]:
        ready, stop = SPAWN.Event(), SPAWN.Event()
        process = SPAWN.Process(target=_worker, args=(amount, ready, stop))
        process.start()
        started.append((process, stop))
        assert ready.wait(BOUND_S), "the worker counted"
        return process, stop

    yield start
    for process, stop in started:
        stop.set()
        process.join(BOUND_S)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
    }


def test_each_workers_samples_carry_its_label_until_it_exits(
    directory: Path, spawn: Callable[[int], tuple[BaseProcess, Event]]
) -> None:
    collector = WorkersCollector(str(directory))
    registry = CollectorRegistry()
    registry.register(collector)
    workers = [spawn(2), spawn(5)]
    for process, _ in workers:
        collector.add(process)

    samples = _samples(registry)
    assert samples[("orders_total", (("code", "OK"), ("worker", "0")))] == 2
    assert samples[("orders_total", (("code", "OK"), ("worker", "1")))] == 5
    assert samples[("in_flight", (("worker", "0"),))] == 20  # no pid label
    assert samples[("in_flight", (("worker", "1"),))] == 50
    assert samples[("process_resident_memory_bytes", (("worker", "1"),))] > 0
    assert samples[("coffee_orders_worker_up", (("worker", "0"),))] == 1
    assert samples[("coffee_orders_worker_up", (("worker", "1"),))] == 1

    process, stop = workers[1]
    stop.set()
    process.join(BOUND_S)
    assert process.exitcode == 0
    samples = _samples(registry)
    assert samples[("coffee_orders_worker_up", (("worker", "1"),))] == 0
    assert not [key for key in samples if ("worker", "1") in key[1] and "worker_up" not in key[0]]
    assert samples[("orders_total", (("code", "OK"), ("worker", "0")))] == 2
