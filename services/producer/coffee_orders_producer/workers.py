"""``--workers N``: N producer processes serving one port, under one supervising process.

With N > 1 the ``coffee-orders producer`` process serves no orders itself. It picks a concrete
port when ``--listen`` asks for port 0, starts N copies of the producer with the same settings
(``workers`` forced to 1), all on that address (grpcio binds with SO_REUSEPORT on Linux, so the
kernel spreads new connections over them), and then only watches:

- health: each worker serves the gRPC health service on the shared port. When any worker exits
  the supervisor logs it, stops the others (SIGTERM, then the grace period) and exits with the
  worker's code (70 when that was 0 or a signal), so that a process supervisor restarts the
  whole. SIGTERM and SIGINT are forwarded; it exits 0 once every worker has stopped cleanly.
- metrics: each worker serves /metrics on a 127.0.0.1 port the supervisor chose; the public
  ``--metrics-listen`` endpoint serves all of them at once, every sample labelled
  ``worker="<i>"`` (sum without ``worker`` in queries for the host's totals), plus
  ``coffee_orders_worker_up{worker="<i>"}``.

Each worker keeps its own request_id ledger (see docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import pickle
import signal
import socket
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from coffee_orders_common.grpc_server import install_stop_signals
from coffee_orders_common.liveness import EXIT_WORKER_FAILED
from coffee_orders_common.metrics import start_metrics_endpoint
from coffee_orders_common.runner import ServiceExit, run_service
from coffee_orders_common.setting_fields import parse_host_port
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .settings import ProducerSettings

log = logging.getLogger("coffee_orders.producer.workers")
SCRAPE_TIMEOUT_S = 2.0  # a worker's /metrics that takes longer is left out of that scrape
_STOP_MARGIN_S = 10.0  # beyond the grace period, before a worker that has not stopped is killed
_PR_SET_PDEATHSIG = 1


async def serve(settings: ProducerSettings) -> None:
    """The producer itself with one worker; a supervisor of ``settings.workers`` otherwise."""
    if settings.workers == 1:
        from .app import serve as serve_one

        await serve_one(settings)
    else:
        await supervise(settings)


def concrete_listen(listen: str) -> tuple[str, socket.socket | None]:
    """``listen`` with a concrete port, and the socket holding it when it was port 0.

    That socket is bound with SO_REUSEPORT but never listens: it keeps the port from being
    handed to anyone else while the workers bind it, and receives no connections.
    """
    host, port = parse_host_port(listen)
    if port != 0:
        return listen, None
    bare = host.strip("[]")
    holder = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((bare, 0))
    return f"{host}:{holder.getsockname()[1]}", holder


def free_local_port() -> int:
    """A port free on 127.0.0.1 right now (for a worker's internal metrics endpoint)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(port: int) -> str | None:
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as reply:
            return str(reply.read().decode())
    except (OSError, TimeoutError):
        return None


class WorkersCollector(Collector):
    """The workers' /metrics as one set: each sample labelled ``worker="<i>"``."""

    def __init__(self, ports: list[int]):
        self._ports = ports

    def collect(self) -> Iterator[Metric]:
        with ThreadPoolExecutor(len(self._ports)) as pool:
            texts = list(pool.map(_scrape, self._ports))
        up = GaugeMetricFamily(
            "coffee_orders_worker_up",
            "1 when the producer worker answered this scrape, else 0",
            labels=["worker"],
        )
        merged: dict[str, Metric] = {}
        for worker, text in enumerate(texts):
            up.add_metric([str(worker)], 0.0 if text is None else 1.0)
            for family in text_string_to_metric_families(text or ""):
                into = merged.setdefault(
                    family.name,
                    Metric(family.name, family.documentation, family.type, family.unit),
                )
                into.samples += [
                    sample._replace(labels={**sample.labels, "worker": str(worker)})
                    for sample in family.samples
                ]
        yield up
        yield from merged.values()


async def _start_worker(index: int, settings: ProducerSettings) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", __name__, str(os.getpid())),
        stdin=asyncio.subprocess.PIPE,
        start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which forwards it
    )
    assert process.stdin is not None
    process.stdin.write(pickle.dumps(settings))  # secrets stay in memory, never in a file
    await process.stdin.drain()
    process.stdin.close()
    log.info(f"producer worker {index} started", extra={"fields": {"pid": process.pid}})
    return process


async def _stop_all(workers: list[asyncio.subprocess.Process], grace_period_s: float) -> None:
    """SIGTERM every worker still running; SIGKILL any that overstays the grace period."""
    for process in workers:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            await asyncio.wait_for(process.wait(), grace_period_s + _STOP_MARGIN_S)
        except TimeoutError:
            log.error(
                "producer worker did not stop in time; killed",
                extra={"fields": {"pid": process.pid}},
            )
            process.kill()
            await process.wait()


async def supervise(settings: ProducerSettings) -> None:
    """Run ``settings.workers`` producer workers until one exits or SIGTERM/SIGINT arrives.

    Raises ``ServiceExit`` with the code to exit with when that is not 0.
    """
    stop = asyncio.Event()
    install_stop_signals(stop)
    listen, holder = concrete_listen(settings.listen)
    ports = [free_local_port() for _ in range(settings.workers)] if settings.metrics_listen else []
    registry = CollectorRegistry()
    if ports:
        registry.register(WorkersCollector(ports))
    endpoint = await start_metrics_endpoint(settings.metrics_listen, registry, settings.limits)
    workers: list[asyncio.subprocess.Process] = []
    try:
        for index in range(settings.workers):
            metrics_listen = f"127.0.0.1:{ports[index]}" if ports else None
            update = {"workers": 1, "listen": listen, "metrics_listen": metrics_listen}
            workers.append(await _start_worker(index, settings.model_copy(update=update)))
        log.info(
            f"producer supervising {len(workers)} workers on {listen}",
            extra={"fields": {"pids": ",".join(str(p.pid) for p in workers)}},
        )
        exits = {asyncio.ensure_future(process.wait()): i for i, process in enumerate(workers)}
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([*exits, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        exited = next((exits[task] for task in exits if task in done), None)
        if exited is None:
            log.info("stopping: forwarding SIGTERM to the producer workers")
            await _stop_all(workers, settings.grace_period_s)
            failed = [p.returncode for p in workers if p.returncode != 0]
            if failed:
                raise ServiceExit(_exit_code(failed[0]))
            return
        code = workers[exited].returncode
        log.error(
            f"producer worker {exited} (pid {workers[exited].pid}) exited with {code}; "
            f"stopping the other workers and exiting with {_exit_code(code)} so that the "
            "whole producer is restarted",
            extra={"fields": {"worker": exited, "exit_code": code}},
        )
        await _stop_all(workers, settings.grace_period_s)
        raise ServiceExit(_exit_code(code))
    finally:
        await _stop_all(workers, settings.grace_period_s)  # no-op unless starting one failed
        endpoint.close()
        if holder is not None:
            holder.close()


def _exit_code(worker_code: int | None) -> int:
    """The worker's own exit code; 70 when it ended by a signal (or exited 0 unasked)."""
    return worker_code if worker_code is not None and worker_code > 0 else EXIT_WORKER_FAILED


def _die_with(parent: int) -> None:
    """SIGTERM this worker when its supervisor dies, however it dies (even SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def worker_main(parent: int) -> int:
    """A worker: the settings arrive pickled on stdin from the supervisor."""
    _die_with(parent)
    settings = pickle.load(sys.stdin.buffer)
    from .app import serve as serve_one

    return run_service("producer", lambda: settings, serve_one)


if __name__ == "__main__":
    sys.exit(worker_main(int(sys.argv[1])))
