"""The metrics of ``producer --workers N``, served by the supervisor: prometheus_client's
multiprocess mode, one label per worker.

Each worker runs with ``PROMETHEUS_MULTIPROC_DIR`` set to the supervisor's temporary directory,
so prometheus_client writes its counters, histograms and gauges to files there (named after the
worker's pid). The supervisor's registry reads them with ``MultiProcessCollector.merge``, one
worker's files at a time rather than all together, so that every sample keeps a
``worker="<i>"`` label instead of being summed. A worker's ``process_*`` metrics come from a
``ProcessCollector`` pointed at its pid; ``coffee_orders_worker_up{worker}`` is 1 while it runs.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

from prometheus_client import ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector


class WorkersCollector(Collector):
    """Every started worker's metrics, each sample labelled ``worker="<i>"``."""

    def __init__(self, directory: str):
        self._directory = directory
        self._workers: list[tuple[BaseProcess, ProcessCollector]] = []

    def add(self, process: BaseProcess) -> None:
        """Report ``process`` (started) as the next worker."""
        pid = process.pid
        assert pid is not None, "started"
        self._workers.append((process, ProcessCollector(pid=lambda: pid, registry=None)))

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "coffee_orders_worker_up",
            "1 while the producer worker process runs, else 0",
            labels=["worker"],
        )
        merged: dict[str, Metric] = {}
        for worker, (process, process_collector) in enumerate(self._workers):
            running = process.is_alive()
            up.add_metric([str(worker)], 1.0 if running else 0.0)
            if not running:
                continue
            files = glob.glob(os.path.join(self._directory, f"*_{process.pid}.db"))
            from_files = MultiProcessCollector.merge(files)  # type: ignore[no-untyped-call]
            for family in [*from_files, *process_collector.collect()]:
                into = merged.setdefault(
                    family.name,
                    Metric(family.name, family.documentation, family.type, family.unit),
                )
                into.samples += [
                    sample._replace(labels=_worker_labels(sample.labels, worker))
                    for sample in family.samples
                ]
        yield up
        yield from merged.values()


def _worker_labels(labels: dict[str, str], worker: int) -> dict[str, str]:
    """``labels`` with ``worker``, without the ``pid`` label multiprocess mode gives gauges."""
    return {**{k: v for k, v in labels.items() if k != "pid"}, "worker": str(worker)}
