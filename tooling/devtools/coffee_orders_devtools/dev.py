"""``coffee-orders dev``: broker, producer and consumer in one terminal.

Each line is prefixed with the process it came from. Ctrl-C or SIGTERM stops the services first
(so the producer flushes and the consumer commits), then the broker. A service that exits on its
own stops the others too; when it exited because a worker failed (code 70), so does ``dev``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from coffee_orders_common.exit_codes import EXIT_FAILED, EXIT_WORKER_FAILED
from coffee_orders_common.option_help import option_help
from coffee_orders_common.settings import state_home
from coffee_orders_localkafka import LocalKafka, LocalKafkaError
from coffee_orders_localkafka.environment import (
    DEFAULT_KAFKA_PORT,
    KAFKA_PORT_ENV,
    BadEnvironment,
    kafka_port,
)

# The services `dev` runs next to the broker: (name, coffee-orders arguments).
SERVICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("producer", ("producer",)),
    ("consumer", ("consumer",)),
)
# What each service logs once it serves (text or JSON logs), with the address it bound.
_LISTENING = {"producer": "producer listening", "consumer": "consumer status server listening"}
_ADDRESS = re.compile(r'address[=":\s]+([\w.:\[\]-]+)')
_WIDTH = 8
_STOP_TIMEOUT_S = 20.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = subparsers.add_parser(
        "dev",
        help="run broker, producer and consumer together (Ctrl-C stops all)",
        epilog="The producer and consumer take their settings from the environment as "
        "`coffee-orders producer --help` and `coffee-orders consumer --help` list them "
        "(COFFEE_PRODUCER_LISTEN, COFFEE_CONSUMER_LISTEN, ...); KAFKA_BROKERS is set to this "
        "broker.",
    )
    dev.add_argument(
        "--port",
        type=int,
        default=None,
        help=option_help("broker port", env=KAFKA_PORT_ENV, default=DEFAULT_KAFKA_PORT),
    )
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=option_help(
            "broker data dir",
            default="~/.local/state/coffee-orders/dev-kafka ($XDG_STATE_HOME moves it)",
        ),
    )
    dev.add_argument("--only-kafka", action="store_true", help="run just the broker, no services")
    dev.set_defaults(handler=run)


def _emit(name: str, line: str) -> None:
    sys.stdout.write(f"{name:<{_WIDTH}} | {line.rstrip()}\n")
    sys.stdout.flush()


class _Readiness:
    """Says "ready" once, when every service has logged the address it serves on."""

    def __init__(self, names: list[str], started: float):
        self._names = names
        self._waiting = set(names)
        self._addresses: dict[str, str] = {}
        self._started = started

    def saw(self, name: str, line: str) -> None:
        if name not in self._waiting or _LISTENING[name] not in line:
            return
        address = _ADDRESS.search(line)
        self._addresses[name] = address.group(1) if address else "?"
        self._waiting.discard(name)
        if not self._waiting:
            where = ", ".join(f"{name} at {self._addresses[name]}" for name in self._names)
            seconds = time.monotonic() - self._started
            _emit("dev", f"ready after {seconds:.0f} s: {where}; Ctrl-C stops everything")


async def _pipe(
    name: str, stream: asyncio.StreamReader, on_line: Callable[[str, str], None]
) -> None:
    async for raw in stream:
        line = raw.decode(errors="replace")
        _emit(name, line)
        on_line(name, line)


def _read_from(path: Path, position: int) -> tuple[str, int]:
    try:
        with path.open("r", errors="replace") as handle:
            handle.seek(position)
            return handle.read(), handle.tell()
    except FileNotFoundError:
        return "", position


def _worth_showing(broker_line: str) -> bool:
    """The broker's INFO chatter stays in its log file; warnings, errors and startup show here."""
    return any(mark in broker_line for mark in (" WARN ", " ERROR ", " FATAL ", "started (kafka"))


async def _follow(name: str, path: Path, stopping: asyncio.Event) -> None:
    """Print lines appended to a log file (the broker writes to files, not to a pipe)."""
    _, position = await asyncio.to_thread(_read_from, path, 0)
    pending = ""
    while not stopping.is_set():
        chunk, position = await asyncio.to_thread(_read_from, path, position)
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            if _worth_showing(line):
                _emit(name, line)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=0.2)


async def _supervise(cluster: LocalKafka, services: bool, started: float) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    tasks = [asyncio.create_task(_follow("kafka", p, stopping)) for p in cluster.log_paths()]
    children: dict[str, asyncio.subprocess.Process] = {}
    env = dict(os.environ, KAFKA_BROKERS=cluster.bootstrap_servers, PYTHONUNBUFFERED="1")
    readiness = _Readiness([name for name, _ in SERVICES], started)
    if services:
        for name, arguments in SERVICES:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "coffee_orders_cli.main",
                *arguments,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            )
            children[name] = process
            assert process.stdout is not None
            tasks.append(asyncio.create_task(_pipe(name, process.stdout, readiness.saw)))
    waiters = {asyncio.create_task(p.wait()): name for name, p in children.items()}
    stop_task = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({stop_task, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    for task in done:
        if task in waiters:
            code = task.result()
            failed = code == EXIT_WORKER_FAILED
            why = " (a worker failed: see its 'worker failed' line)" if failed else ""
            _emit("dev", f"{waiters[task]} exited with code {code}{why}; stopping everything")
            status = EXIT_WORKER_FAILED if failed else EXIT_FAILED
    await _stop_children(children)
    stopping.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return status


async def _stop_children(children: dict[str, asyncio.subprocess.Process]) -> None:
    for process in children.values():
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for name, process in children.items():
        try:
            await asyncio.wait_for(process.wait(), timeout=_STOP_TIMEOUT_S)
        except TimeoutError:
            _emit("dev", f"{name} did not stop within {_STOP_TIMEOUT_S:.0f} s; killing it")
            process.kill()
            await process.wait()


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    data_dir: Path = args.data_dir or state_home() / "dev-kafka"
    try:
        cluster = LocalKafka(data_dir, port=kafka_port(args.port))
    except BadEnvironment as exc:
        print(f"coffee-orders dev: error: {exc}", file=sys.stderr)
        return 1
    try:
        _emit("dev", f"starting Kafka in {data_dir}")
        bootstrap = cluster.up()
        then = "Ctrl-C stops it" if args.only_kafka else "starting the producer and consumer"
        _emit("dev", f"Kafka ready at {bootstrap}; {then}")
        return asyncio.run(_supervise(cluster, not args.only_kafka, started))
    except LocalKafkaError as exc:
        print(f"coffee-orders dev: error: {exc}", file=sys.stderr)
        return 1
    finally:
        stopped = cluster.down()
        _emit("dev", f"stopped Kafka ({len(stopped)} process(es))")
