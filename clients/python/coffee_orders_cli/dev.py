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
import signal
import sys
from pathlib import Path

from coffee_orders_common.liveness import EXIT_WORKER_FAILED
from coffee_orders_common.settings import state_home
from coffee_orders_localkafka import LocalKafka, LocalKafkaError

# The services `dev` runs next to the broker: (name, coffee-orders arguments).
SERVICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("producer", ("producer",)),
    ("consumer", ("consumer",)),
)
_WIDTH = 8
_STOP_TIMEOUT_S = 20.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = subparsers.add_parser(
        "dev", help="run broker, producer and consumer together (Ctrl-C stops all)"
    )
    dev.add_argument("--port", type=int, default=9092, help="broker port (default 9092)")
    dev.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="broker data dir (default ~/.local/state/coffee-orders/dev-kafka)",
    )
    dev.add_argument("--only-kafka", action="store_true", help="run just the broker, no services")
    dev.set_defaults(handler=run)


def _emit(name: str, line: str) -> None:
    sys.stdout.write(f"{name:<{_WIDTH}} | {line.rstrip()}\n")
    sys.stdout.flush()


async def _pipe(name: str, stream: asyncio.StreamReader) -> None:
    async for raw in stream:
        _emit(name, raw.decode(errors="replace"))


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


async def _supervise(cluster: LocalKafka, services: bool) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    tasks = [asyncio.create_task(_follow("kafka", p, stopping)) for p in cluster.log_paths()]
    children: dict[str, asyncio.subprocess.Process] = {}
    env = dict(os.environ, KAFKA_BROKERS=cluster.bootstrap_servers, PYTHONUNBUFFERED="1")
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
            tasks.append(asyncio.create_task(_pipe(name, process.stdout)))
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
            status = EXIT_WORKER_FAILED if failed else 1
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
    data_dir: Path = args.data_dir or state_home() / "dev-kafka"
    cluster = LocalKafka(data_dir, port=args.port)
    try:
        _emit("dev", f"starting Kafka in {data_dir} (first run downloads the jars)")
        bootstrap = cluster.up()
        _emit("dev", f"Kafka ready at {bootstrap}; Ctrl-C stops everything")
        return asyncio.run(_supervise(cluster, services=not args.only_kafka))
    except LocalKafkaError as exc:
        print(f"coffee-orders dev: error: {exc}", file=sys.stderr)
        return 1
    finally:
        stopped = cluster.down()
        _emit("dev", f"stopped Kafka ({len(stopped)} process(es))")
