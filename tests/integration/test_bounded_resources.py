"""Callers that do not read, and connection floods: memory, threads and files stay bounded.

Services run as real processes where their memory, threads or file descriptors are measured.
Figures from these attacks are in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import select
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import grpc
import pytest
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee.orders.v1 import consumer_status_pb2_grpc, orders_pb2, orders_pb2_grpc
from coffee_orders_client import AsyncCoffeeOrdersClient, NewOrder, PlacedOrder
from coffee_orders_common import wire
from coffee_orders_devtools.processes import CLI, RunningCommand
from coffee_orders_devtools.waiting import async_wait_until, wait_until
from coffee_orders_localkafka import LocalKafka
from coffee_orders_producer.admission import Slots
from coffee_orders_producer.metrics import ProducerMetrics
from coffee_orders_producer.settings import ProducerSettings

from tests.support.kafka_io import produce_all
from tests.support.load import LoadOutcome, drive, topic_keys
from tests.support.processes import free_port_pair
from tests.support.scrape import scrape
from tests.support.services import (
    consumer_status,
    order,
    order_client,
    producer_settings,
    running_producer,
)

pytestmark = pytest.mark.kafka
PER_STREAM = ProducerSettings().stream_unanswered
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
# Generous: what the attacks cost before the bounds was hundreds of MB (docs/reliability.md).
RSS_GROWTH_MB = 150
# The HTTP/2 client preface and an empty SETTINGS frame: a handshake done, then nothing.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _start(
    tmp_path: Path, show_logs: Callable[[Path], None], service: str, **env: str
) -> tuple[RunningCommand, int, int]:
    """``coffee-orders <service>`` on free ports; returns it, its gRPC and its metrics port."""
    port, metrics_port = free_port_pair(), free_port_pair()
    log = tmp_path / f"{service}.log"
    show_logs(log)
    command = RunningCommand(
        log,
        *(service, "--listen", f"127.0.0.1:{port}"),
        *("--metrics-listen", f"127.0.0.1:{metrics_port}"),
        env=env,
    )
    command.wait_for_output(f"{service}.* listening")
    return command, port, metrics_port


def _kafka_env(broker: LocalKafka, topic: str, tmp_path: Path) -> dict[str, str]:
    return {
        "KAFKA_BROKERS": broker.bootstrap_servers,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"g-{topic}",
    }


# ---- PlaceOrders: a caller that never reads its answers --------------------------------------


def _batch(orders: Iterable[orders_pb2.PlaceOrderRequest]) -> orders_pb2.PlaceOrdersRequest:
    return orders_pb2.PlaceOrdersRequest(orders=list(orders))


def _attack(rounds: int, seeds: list[NewOrder]) -> list[tuple[str, orders_pb2.PlaceOrdersRequest]]:
    """Per round: 1000 new valid orders, 1000 repeats of confirmed request_ids, 15 x 1000 blank."""
    batches = []
    repeat = _batch(order(s.customer_name, s.coffee_type, s.request_id or "") for s in seeds)
    blank = _batch(order(" ", "Latte") for _ in range(1000))
    for r in range(rounds):
        batches.append(
            ("valid", _batch(order(f"g{r}-{i}", "Latte", f"a{r}-{i}") for i in range(1000)))
        )
        batches.append(("repeat", repeat))
        batches.extend(("blank", blank) for _ in range(15))
    return batches


async def _write_all(
    call: grpc.aio.StreamStreamCall[orders_pb2.PlaceOrdersRequest, orders_pb2.PlaceOrdersResponse],
    requests: list[orders_pb2.PlaceOrdersRequest],
) -> None:
    for request in requests:
        await call.write(request)
    await call.done_writing()


async def test_a_placeorders_caller_that_never_reads_is_held_at_a_bound_and_loses_nothing(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    producer, port, metrics_port = await asyncio.to_thread(
        _start,
        tmp_path,
        show_logs_on_failure,
        "producer",
        **_kafka_env(kafka_broker, fresh_topic, tmp_path),
    )
    address = f"127.0.0.1:{port}"

    async def unanswered() -> float:
        samples = await asyncio.to_thread(scrape, metrics_port)
        return samples[("coffee_orders_stream_unanswered", ())]

    async def answered() -> float:
        samples = await asyncio.to_thread(scrape, metrics_port)
        return sum(v for (name, _), v in samples.items() if name == "coffee_orders_placed_total")

    try:
        seeds = [NewOrder(f"seed {i}", "Latte", request_id=f"seed-{i}") for i in range(1000)]
        async with AsyncCoffeeOrdersClient(address) as client:
            seeded = await client.place_orders(seeds, batch_size=1000, timeout=60)
        assert all(isinstance(s, PlacedOrder) for s in seeded)
        baseline_mb = producer.rss_mb()
        batches = _attack(20, seeds)
        async with grpc.aio.insecure_channel(address) as channel, asyncio.TaskGroup() as tasks:
            call = orders_pb2_grpc.OrderServiceStub(channel).PlaceOrders(timeout=600)
            tasks.create_task(_write_all(call, [b for _, b in batches]))

            async def held_at_the_bound() -> bool:
                return await unanswered() == PER_STREAM

            # The stream stops reading at its bound while none of its answers are read.
            await async_wait_until(held_at_the_bound, 60, f"{PER_STREAM} orders held")
            stuck_mb = producer.rss_mb()
            # Everyone else is still served, by PlaceOrder and by streams of their own.
            async with AsyncCoffeeOrdersClient(address) as other:
                alone = await other.place_order("Other", "Mocha", request_id="other-1")
                streamed = await other.place_orders(
                    [NewOrder(f"other {i}", "Tea", request_id=f"other-s{i}") for i in range(50)],
                    batch_size=25,
                    timeout=60,
                )
            assert all(isinstance(s, PlacedOrder) for s in streamed)
            # Held: answered only as far as the caller's own buffers took answers in.
            assert await unanswered() <= PER_STREAM
            held_answered = await answered()
            offered = sum(len(b.orders) for _, b in batches)
            print(f"figures: {held_answered} of {offered} orders answered while not reading")
            assert held_answered < offered / 2
            stuck_mb = max(stuck_mb, producer.rss_mb())
            replies = await asyncio.wait_for(_read_all(call), 300)
        after_mb = producer.rss_mb()
    finally:
        producer.stop(signal.SIGTERM)

    print(f"figures: producer RSS MB {baseline_mb:.0f} -> {stuck_mb:.0f} held -> {after_mb:.0f}")
    assert stuck_mb < baseline_mb + RSS_GROWTH_MB, (baseline_mb, stuck_mb)
    assert after_mb < baseline_mb + RSS_GROWTH_MB, (baseline_mb, after_mb)
    assert len(replies) == len(batches)
    confirmed = {s.order_id for s in seeded if isinstance(s, PlacedOrder)}
    confirmed |= {alone.order_id} | {s.order_id for s in streamed if isinstance(s, PlacedOrder)}
    seed_answers = [
        (s.order_id, s.partition, s.offset) for s in seeded if isinstance(s, PlacedOrder)
    ]
    for (kind, request), reply in zip(batches, replies, strict=True):
        assert len(reply.results) == len(request.orders)
        if kind == "blank":
            assert {r.error.code for r in reply.results} == {INVALID_ARGUMENT}
            continue
        answers = [
            (r.confirmed.order_id, r.confirmed.partition, r.confirmed.offset) for r in reply.results
        ]
        assert all(r.HasField("confirmed") for r in reply.results)
        if kind == "repeat":  # the ledger's answers: the same orders, not published again
            assert answers == seed_answers
        else:
            assert [a[0] for a in answers] == [
                wire.order_id_for(o.request_id) for o in request.orders
            ]
            confirmed |= {a[0] for a in answers}
    on_topic = Counter(
        await asyncio.to_thread(topic_keys, kafka_broker.bootstrap_servers, fresh_topic)
    )
    assert len(confirmed) == 1000 + 1 + 50 + 20 * 1000
    assert {order_id: on_topic[order_id] for order_id in confirmed} == dict.fromkeys(confirmed, 1)
    assert sum(on_topic.values()) == len(confirmed)


async def _read_all(
    call: AsyncIterator[orders_pb2.PlaceOrdersResponse],
) -> list[orders_pb2.PlaceOrdersResponse]:
    return [reply async for reply in call]


async def test_streams_together_never_push_in_flight_above_the_limit(
    kafka_broker: LocalKafka, fresh_topic: str
) -> None:
    limit = 300
    settings = producer_settings(kafka_broker.bootstrap_servers, topic=fresh_topic)
    settings = settings.model_copy(update={"max_in_flight": limit})
    seen: list[float] = []
    done = asyncio.Event()
    metrics = ProducerMetrics()

    async def watch_in_flight() -> None:  # the gauge reads the servicer's count when collected
        while not done.is_set():
            seen.extend(s.value for m in metrics.in_flight.collect() for s in m.samples)
            await asyncio.sleep(0.001)

    async def stream(number: int, batch_size: int) -> list[object]:
        orders = [
            NewOrder(f"s{number} {i}", "Latte", request_id=f"s{number}-{i}") for i in range(3000)
        ]
        async with AsyncCoffeeOrdersClient(address) as client:
            return list(await client.place_orders(orders, batch_size=batch_size, timeout=300))

    async with running_producer(settings, metrics=metrics) as address:
        watcher = asyncio.create_task(watch_in_flight())
        unary = LoadOutcome()
        # Batches of 1000 are larger than the limit (admitted in parts of 300), 250 fit whole.
        results = await asyncio.gather(
            *(stream(n, 1000 if n % 2 else 250) for n in range(6)),
            drive(address, 4, asyncio.Event(), unary, "unary", per_caller=50),
        )
        done.set()
        await watcher
    outcomes = [o for streamed in results[:6] for o in (streamed or [])]
    assert len(outcomes) == 6 * 3000 and all(isinstance(o, PlacedOrder) for o in outcomes)
    assert set(unary.errors) <= {"RESOURCE_EXHAUSTED"}, unary.errors
    print(f"figures: in flight at most {max(seen)} of {limit} in {len(seen)} samples")
    assert max(seen) <= limit, f"in flight reached {max(seen)} with a limit of {limit}"
    assert max(seen) > limit // 2, "the load never came near the limit: the test proves nothing"
    keys = await asyncio.to_thread(topic_keys, kafka_broker.bootstrap_servers, fresh_topic)
    assert len(keys) == len(set(keys)) == 6 * 3000 + len(unary.acknowledged)


async def test_slots_go_first_come_first_served_and_a_cancelled_waiter_takes_none() -> None:
    slots = Slots(10)
    await slots.reserve(8)
    big = asyncio.create_task(slots.reserve(5))  # waits: 8 + 5 > 10
    cancelled = asyncio.create_task(slots.reserve(1))
    small = asyncio.create_task(slots.reserve(2))  # would fit, but waits behind the big one
    await asyncio.sleep(0)
    assert not big.done() and not small.done() and slots.taken == 8
    cancelled.cancel()
    slots.release(8)  # none taken: the big one fits, then the small one; the cancelled one left
    await asyncio.wait_for(asyncio.gather(big, small), 5)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert slots.taken == 5 + 2
    with pytest.raises(ValueError):
        await slots.reserve(11)


# ---- WatchErrors: a watcher that never reads --------------------------------------------------


class _PipedCli:
    """``coffee-orders status --watch`` writing into a pipe nobody reads until ``lines_until``:
    a watcher stuck behind its own output, as with a pager that was never scrolled."""

    def __init__(self, address: str, log: Path):
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [*CLI, "status", "--watch", "--target", address],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self._stdout = self.process.stdout

    def lines_until(self, pattern: str, timeout_s: float) -> list[str]:
        """Read its output until a line matches ``pattern``; fail after ``timeout_s``."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout_s
        while not lines or not re.search(pattern, lines[-1]):
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self._stdout], [], [], max(left, 0))
            if not readable:
                raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s")
            line = self._stdout.readline().decode(errors="replace")
            if not line:
                raise AssertionError(f"the CLI exited ({self.process.wait(5)}) before {pattern!r}")
            lines.append(line)
        return lines

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._stdout.close()
            self._stderr.close()


async def test_a_watcher_that_never_reads_is_told_what_it_missed_and_memory_stays_bounded(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    # Payloads of 300 bytes make every streamed error about 350 bytes (a 256-byte excerpt), so
    # 20,000 of them are far more than the watchers' socket and HTTP/2 buffers take in.
    bad = [b"bad %05d " % i + b"x" * 290 for i in range(20_000)]
    bootstrap = kafka_broker.bootstrap_servers
    env = _kafka_env(kafka_broker, fresh_topic, tmp_path)
    consumer, port, _ = await asyncio.to_thread(
        _start, tmp_path, show_logs_on_failure, "consumer", **env
    )
    address = f"127.0.0.1:{port}"
    show_logs_on_failure(tmp_path / "status-watch.log")
    cli: _PipedCli | None = None
    try:
        await asyncio.to_thread(consumer.wait_for_output, "partitions assigned")
        baseline_mb = consumer.rss_mb()
        async with grpc.aio.insecure_channel(address) as channel:
            stuck = consumer_status_pb2_grpc.ConsumerStatusServiceStub(channel).WatchErrors(
                status_pb.WatchErrorsRequest()
            )
            await stuck.initial_metadata()  # subscribed: every error from now on is for it
            before = (await consumer_status(address)).counters.errors_total
            cli = _PipedCli(address, tmp_path / "status-watch.log")

            async def cli_shows_an_error() -> bool:
                assert cli is not None
                await asyncio.to_thread(produce_all, bootstrap, fresh_topic, [b"warm-up"])
                with contextlib.suppress(AssertionError):
                    await asyncio.to_thread(cli.lines_until, "not_json", 1)
                    return True
                return False

            await async_wait_until(cli_shows_an_error, 60, "the CLI watching errors")
            await asyncio.to_thread(produce_all, bootstrap, fresh_topic, bad)

            async def all_counted() -> int | None:
                total = (await consumer_status(address)).counters.errors_total
                return total if total - before >= len(bad) else None

            total = await async_wait_until(all_counted, 180, f"{len(bad)} errors counted")
            flooded_mb = consumer.rss_mb()
            delivered, dropped = await asyncio.wait_for(_account(stuck, total - before), 120)
            stuck.cancel()
        cli_lines = await asyncio.to_thread(cli.lines_until, r"errors dropped here", 120)
        status = await consumer_status(address)
    finally:
        if cli is not None:
            cli.stop()
        consumer.stop(signal.SIGTERM)
    print(
        f"figures: consumer RSS MB {baseline_mb:.0f} -> {flooded_mb:.0f}; {total - before} "
        f"errors: {delivered} delivered, {dropped} dropped; the CLI: {cli_lines[-1].strip()}"
    )
    assert flooded_mb < baseline_mb + RSS_GROWTH_MB, (baseline_mb, flooded_mb)
    assert dropped > 0 and delivered + dropped == total - before
    kinds = {count.kind: count.count for count in status.counters.errors_by_kind}
    assert kinds[status_pb.ERROR_KIND_NOT_JSON] == total  # GetStatus counts every error


async def _account(
    stream: AsyncIterator[status_pb.WatchErrorsResponse], expected: int
) -> tuple[int, int]:
    """Read until every expected error was delivered or reported dropped."""
    delivered = dropped = 0
    async for item in stream:
        delivered += 1
        dropped += item.dropped
        if delivered + dropped >= expected:
            break
    return delivered, dropped


# ---- connection floods --------------------------------------------------------------------


def _affordable(wanted: int) -> float:
    """The share of ``wanted`` sockets this test process can open (soft limit raised to hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return min(1.0, (hard - 500) / wanted)


def _open_idle(port: int, count: int, preface: bytes = b"") -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        if preface:
            connection.sendall(preface)
        connection.setblocking(False)
        sockets.append(connection)
    return sockets


def _held(pid: int, port: int) -> int:
    """Established connections to ``port`` whose sockets process ``pid`` holds (accepted)."""
    inodes = {
        link.removeprefix("socket:[").removesuffix("]")
        for fd in Path(f"/proc/{pid}/fd").iterdir()
        if (link := _readlink(fd)).startswith("socket:[")
    }
    held = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            held += local_port == port and state == "01" and inode in inodes
    return held


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:  # closed meanwhile
        return ""


def _closed_by_server(connection: socket.socket, received: dict[int, bytes]) -> bool:
    """True once the server closed ``connection``; what it sent before is kept in ``received``."""
    try:
        while data := connection.recv(65536):
            received[connection.fileno()] = received.get(connection.fileno(), b"") + data
    except BlockingIOError:
        return False
    except ConnectionError:
        pass
    return True


def test_idle_connection_floods_are_bounded_closed_when_idle_and_cost_no_thread(
    kafka_broker: LocalKafka,
    fresh_topic: str,
    tmp_path: Path,
    show_logs_on_failure: Callable[[Path], None],
) -> None:
    idle_timeout_s = 30  # far beyond the time to open the flood on a loaded machine
    share = _affordable(3000)
    grpc_idle, metrics_idle = int(2000 * share), int(500 * share)
    grpc_limit, metrics_limit = grpc_idle + 50, metrics_idle + 10  # room for the test's callers
    producer, port, metrics_port = _start(
        tmp_path,
        show_logs_on_failure,
        "producer",
        **_kafka_env(kafka_broker, fresh_topic, tmp_path),
        COFFEE_MAX_CONNECTIONS=str(grpc_limit),
        COFFEE_METRICS_MAX_CONNECTIONS=str(metrics_limit),
        COFFEE_IDLE_TIMEOUT=str(idle_timeout_s),
        COFFEE_HANDSHAKE_TIMEOUT=str(idle_timeout_s),
    )
    address = f"127.0.0.1:{port}"
    received: dict[int, bytes] = {}
    flood: list[socket.socket] = []
    try:
        asyncio.run(_place_one(address, "before"))
        threads, files = producer.threads(), producer.open_files()
        # Below the bounds: raw TCP (no handshake), HTTP/2 without a call, and raw HTTP.
        flood += _open_idle(port, grpc_idle // 2)
        flood += _open_idle(port, grpc_idle - grpc_idle // 2, HTTP2_PREFACE)
        flood += _open_idle(metrics_port, metrics_idle)
        # Counted per port from the kernel's socket table: a baseline of all open files moves
        # with librdkafka's own connections.
        wait_until(
            lambda: (
                _held(producer.pid, port) >= grpc_idle
                and _held(producer.pid, metrics_port) >= metrics_idle
            ),
            60,
            f"{grpc_idle} gRPC and {metrics_idle} /metrics connections held",
        )
        during = (producer.threads(), producer.open_files(), producer.rss_mb())
        assert during[0] <= threads + 8, "a thread per connection"
        asyncio.run(_place_one(address, "during"))  # a new caller gets its answer
        assert ("coffee_orders_in_flight", ()) in scrape(metrics_port)
        # Beyond the bounds: refused at once (gRPC closes, /metrics answers 503), never held.
        extra_grpc = _open_idle(port, 200, HTTP2_PREFACE)
        extra_metrics = _open_idle(metrics_port, 100)
        flood += extra_grpc + extra_metrics

        refusals: Counter[str] = Counter()

        def refused() -> bool:
            refusals["gRPC"] = sum(_closed_by_server(s, received) for s in extra_grpc)
            refusals["metrics"] = sum(_closed_by_server(s, received) for s in extra_metrics)
            return refusals["gRPC"] >= 150 and refusals["metrics"] >= 90

        wait_until(refused, 60, "connections beyond the limits refused")
        assert producer.open_files() <= files + grpc_limit + metrics_limit + 20
        assert any(r.startswith(b"HTTP/1.1 503") for r in received.values())
        # Idle connections are closed after the idle timeout; the files go back.
        wait_until(
            lambda: all(_closed_by_server(s, received) for s in flood),
            idle_timeout_s + 90,
            "every idle connection closed by the server",
        )
        wait_until(lambda: producer.open_files() <= files + 5, 30, "files given back")
        print(
            f"figures: {grpc_idle} idle gRPC + {metrics_idle} idle /metrics connections: "
            f"threads {threads} -> {during[0]}, files {files} -> {during[1]} -> "
            f"{producer.open_files()}, RSS {during[2]:.0f} MB; refused beyond the limits: "
            f"{dict(refusals)}"
        )
        assert producer.threads() <= threads + 8
        asyncio.run(_place_one(address, "after"))
        assert ("coffee_orders_in_flight", ()) in scrape(metrics_port)
    finally:
        for connection in flood:
            connection.close()
        producer.stop(signal.SIGTERM)


async def _place_one(address: str, request_id: str) -> None:
    async with order_client(address) as client:
        reply = await client.PlaceOrder(order(request_id=request_id), timeout=30)
    assert reply.offset >= 0
