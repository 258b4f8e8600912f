"""``--workers N``: N producer processes serving one port, under one supervising process.

With N > 1 the ``coffee-orders producer`` process serves no orders itself. It picks a concrete
port when ``--listen`` asks for port 0, starts N copies of the producer with the same settings
(``workers`` forced to 1) as ``multiprocessing`` processes of the spawn context, all on that
address (grpcio binds with SO_REUSEPORT on Linux, so the kernel spreads new connections over
them), and then only watches:

- health: each worker serves the gRPC health service on the shared port. When any worker exits
  the supervisor logs it, stops the others (SIGTERM, then the grace period) and exits with the
  worker's code (70 when that was 0 or a signal), so that a process supervisor restarts the
  whole. SIGTERM and SIGINT are forwarded; it exits 0 once every worker has stopped cleanly.
  A worker whose supervisor dies (however it dies, even SIGKILL) gets SIGTERM.
- metrics: prometheus_client's multiprocess mode (see ``worker_metrics``); the public
  ``--metrics-listen`` endpoint is the supervisor's, every worker sample labelled
  ``worker="<i>"`` (sum without ``worker`` in queries for the host's totals), plus
  ``coffee_orders_worker_up{worker="<i>"}``.

Each worker keeps its own request_id ledger (see docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

from coffee_orders_common.exit_codes import EXIT_WORKER_FAILED
from coffee_orders_common.grpc_server import install_stop_signals
from coffee_orders_common.metrics import start_metrics_endpoint
from coffee_orders_common.runner import ServiceExit, run_service
from coffee_orders_common.setting_fields import parse_host_port
from prometheus_client import CollectorRegistry

from .metrics import MULTIPROC_DIR
from .settings import ProducerSettings
from .worker_metrics import WorkersCollector

log = logging.getLogger("coffee_orders.producer.workers")
_STOP_MARGIN_S = 10.0  # beyond the grace period, before a worker that has not stopped is killed
# A fresh interpreter per worker: unlike fork, nothing of the supervisor's state (its event
# loop, its signal handlers, its threads' locks) is inherited.
_SPAWN = multiprocessing.get_context("spawn")


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


class _Worker:
    """A started worker process, and a future that ends with its exit code when it exits."""

    def __init__(self, index: int, process: BaseProcess):
        self.index, self.process = index, process
        self._loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int | None] = self._loop.create_future()
        self._loop.add_reader(process.sentinel, self._on_exit)  # readable once it has ended

    def _on_exit(self) -> None:
        self._loop.remove_reader(self.process.sentinel)
        self.process.join()  # it has ended: reaps it at once
        self.exited.set_result(self.process.exitcode)


def _start_worker(index: int, settings: ProducerSettings) -> _Worker:
    name = f"producer-worker-{index}"
    process = _SPAWN.Process(target=worker_main, args=(settings,), name=name)
    process.start()  # the settings are pickled to it through a pipe, never written to a file
    log.info(f"producer worker {index} started", extra={"fields": {"pid": process.pid}})
    return _Worker(index, process)


async def _stop_all(workers: list[_Worker], grace_period_s: float) -> None:
    """SIGTERM every worker still running; SIGKILL any that overstays the grace period."""
    for worker in workers:
        if not worker.exited.done():
            worker.process.terminate()
    for worker in workers:
        try:
            await asyncio.wait_for(asyncio.shield(worker.exited), grace_period_s + _STOP_MARGIN_S)
        except TimeoutError:
            log.error(
                "producer worker did not stop in time; killed",
                extra={"fields": {"pid": worker.process.pid}},
            )
            worker.process.kill()
            await worker.exited


@contextlib.contextmanager
def _multiprocess_metrics(wanted: bool) -> Iterator[WorkersCollector | None]:
    """With ``wanted``, a temporary directory for the workers' metrics files (removed at exit)
    in the environment the workers start with, and the collector that reads it."""
    if not wanted:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="coffee-orders-metrics-") as directory:
        os.environ[MULTIPROC_DIR] = directory  # spawned workers inherit it
        try:
            yield WorkersCollector(directory)
        finally:
            os.environ.pop(MULTIPROC_DIR, None)


async def supervise(settings: ProducerSettings) -> None:
    """Run ``settings.workers`` producer workers until one exits or SIGTERM/SIGINT arrives.

    Raises ``ServiceExit`` with the code to exit with when that is not 0.
    """
    stop = asyncio.Event()
    install_stop_signals(stop)
    listen, holder = concrete_listen(settings.listen)
    workers: list[_Worker] = []
    with _multiprocess_metrics(bool(settings.metrics_listen)) as collector:
        registry = CollectorRegistry()
        if collector is not None:
            registry.register(collector)
        endpoint = await start_metrics_endpoint(settings.metrics_listen, registry, settings.limits)
        try:
            update = {"workers": 1, "listen": listen, "metrics_listen": None}
            for index in range(settings.workers):
                workers.append(_start_worker(index, settings.model_copy(update=update)))
                if collector is not None:
                    collector.add(workers[-1].process)
            await _supervise(workers, listen, stop, settings.grace_period_s)
        finally:
            await _stop_all(workers, settings.grace_period_s)  # no-op unless starting one failed
            endpoint.close()
            if holder is not None:
                holder.close()


async def _supervise(
    workers: list[_Worker], listen: str, stop: asyncio.Event, grace_period_s: float
) -> None:
    log.info(
        f"producer supervising {len(workers)} workers on {listen}",
        extra={"fields": {"pids": ",".join(str(w.process.pid) for w in workers)}},
    )
    stopping = asyncio.ensure_future(stop.wait())
    waiting: list[asyncio.Future[Any]] = [*(w.exited for w in workers), stopping]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    exited = next((w for w in workers if w.exited.done()), None)
    if exited is None:
        log.info("stopping: forwarding SIGTERM to the producer workers")
        await _stop_all(workers, grace_period_s)
        failed = [w.process.exitcode for w in workers if w.process.exitcode != 0]
        if failed:
            raise ServiceExit(_exit_code(failed[0]))
        return
    code = exited.process.exitcode
    log.error(
        f"producer worker {exited.index} (pid {exited.process.pid}) exited with {code}; "
        f"stopping the other workers and exiting with {_exit_code(code)} so that the "
        "whole producer is restarted",
        extra={"fields": {"worker": exited.index, "exit_code": code}},
    )
    await _stop_all(workers, grace_period_s)
    raise ServiceExit(_exit_code(code))


def _exit_code(worker_code: int | None) -> int:
    """The worker's own exit code; 70 when it ended by a signal (or exited 0 unasked)."""
    return worker_code if worker_code is not None and worker_code > 0 else EXIT_WORKER_FAILED


def worker_main(settings: ProducerSettings) -> None:
    """A worker process: the producer with ``settings``, until SIGTERM."""
    os.setsid()  # its own session: a terminal's Ctrl-C reaches the supervisor, which forwards it
    supervisor = multiprocessing.parent_process()
    assert supervisor is not None, "started by the supervisor"
    threading.Thread(
        target=_stop_with, args=(supervisor,), name="supervisor watch", daemon=True
    ).start()
    from .app import serve as serve_one

    sys.exit(run_service("producer", lambda: settings, serve_one))


def _stop_with(supervisor: BaseProcess) -> None:
    """SIGTERM this worker once its supervisor has ended, however it ended (even SIGKILL)."""
    supervisor.join()
    os.kill(os.getpid(), signal.SIGTERM)
