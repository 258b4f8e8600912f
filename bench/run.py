"""Run the whole benchmark on this machine: its own broker, services and load.

    python -m bench.run            # full run (~25 min), writes docs/benchmarks.md and friends
    python -m bench.run --smoke    # seconds: every scenario once with tiny numbers (CI)

Each scenario runs at least three times and reports the median; the Kafka and gRPC limits run
in the same session, right after the producer at the same load, so ratios compare like with
like. Results: bench/results/<time>.json always; with --write-docs also benchmarks.json,
benchmarks.png and the results section of benchmarks.md in --docs-dir (default docs/).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.cluster import free_ports
from coffee_orders_localkafka.jars import KAFKA_VERSION
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import drain, ghz, go_peers, hey, report, streaming
from bench.consumer_runs import drain_run, end_to_end_run, soak_run
from bench.cpu import children_cpu_seconds, with_per_order
from bench.flood import flood
from bench.ghz import ROOT, LoadResult
from bench.kafka_limit import kafka_settings
from bench.kafka_limit import run as kafka_limit_run
from bench.processes import Measured, Supervised, coffee_orders, cpu_seconds, python_module
from bench.stats import median

RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Plan:
    """How much load each scenario gets; the smoke plan only proves that everything runs."""

    runs: int
    concurrency: tuple[int, ...]
    calls: dict[int, int]
    stream_orders: int
    e2e_seconds: float
    drain_orders: int
    soak_seconds: float
    soak_sample_s: float
    flood_bad: int
    workers_calls: int


FULL = Plan(
    runs=3,
    concurrency=(1, 16, 64, 256),
    calls={1: 2_000, 16: 20_000, 64: 30_000, 256: 30_000},
    stream_orders=300_000,
    e2e_seconds=20,
    drain_orders=300_000,
    soak_seconds=600,
    soak_sample_s=10,
    flood_bad=100_000,
    workers_calls=30_000,
)
SMOKE = Plan(
    runs=1,
    concurrency=(1, 16),
    calls={1: 50, 16: 400},
    stream_orders=4_000,
    e2e_seconds=1,
    drain_orders=2_000,
    soak_seconds=3,
    soak_sample_s=1,
    flood_bad=300,
    workers_calls=400,
)
STREAM_SHAPE = streaming.StreamShape()
E2E_RATE = 1000.0
FLOOD_BAD_PER_GOOD = 10
WORKERS = (1, 2)  # producer processes on one port (--workers)
WORKERS_CALLERS = 64
# PlaceOrders against --workers N: as many orders in flight as STREAM_SHAPE, one stream per
# connection so that the kernel spreads them over the workers (SO_REUSEPORT)
WORKERS_STREAM_SHAPE = streaming.StreamShape(streams=8, window=1, batch=250, connections=8)


def wait_serving(target: str, process: Measured, timeout_s: float = 60.0) -> None:
    """Block until the gRPC health check at ``target`` says SERVING (bounded)."""

    def serving() -> bool:
        try:
            with grpc.insecure_channel(target) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    process.wait_while_running(serving, timeout_s, f"{process.name} SERVING at {target}")


def measured(
    process: Measured | None,
    load: Callable[[], LoadResult],
    broker_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Run ``load`` and add the server process's CPU (percent of one core, seconds, per order)
    and peak RSS, the load generator's CPU (a child process), and the broker's CPU over the same
    run when ``broker_cpu`` reads it."""
    cpu_before = process.cpu_seconds() if process else 0.0
    broker_before = broker_cpu() if broker_cpu else 0.0
    load_before = children_cpu_seconds()
    result = load()
    figures: dict[str, Any] = asdict(result)
    figures["load_cpu_seconds"] = children_cpu_seconds() - load_before
    if process is not None:
        figures["cpu_seconds"] = process.cpu_seconds() - cpu_before
        figures["cpu_percent"] = 100 * figures["cpu_seconds"] / result.seconds
        figures["peak_rss_mb"] = process.peak_rss_mb()
    if broker_cpu is not None:
        figures["broker_cpu_seconds"] = broker_cpu() - broker_before
    return with_per_order(figures)


@dataclass(frozen=True)
class Contender:
    """A server under load and how to drive it: ``unary(concurrency, total)`` and, where it
    serves PlaceOrders, ``stream(total)``."""

    process: Measured
    unary: Callable[[int, int], LoadResult]
    stream: Callable[[int], LoadResult] | None


def grpc_contender(
    process: Measured, target: str, shape: streaming.StreamShape = STREAM_SHAPE
) -> Contender:
    """A server of the coffee.orders.v1 contract: ghz for PlaceOrder, streamload (``shape``)
    for the stream."""
    return Contender(
        process,
        functools.partial(ghz.place_order_load, target),
        functools.partial(streaming.place_orders_load, target, shape),
    )


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    # a figure a run lacks (CPU per order where nothing was confirmed) is left out of its median
    summary: dict[str, Any] = {key: median([run[key] for run in runs if key in run])
                               for key in keys}  # fmt: skip
    summary["errors"] = {k: v for run in runs for k, v in run.get("errors", {}).items()}
    summary["runs"] = len(runs)
    return summary


class Bench:
    def __init__(self, plan: Plan, work: Path, listener: str = "PLAINTEXT"):
        """``listener``: the services and the Kafka limit connect over PLAINTEXT, SSL (mutual
        TLS) or SASL_SSL (SCRAM-SHA-512)."""
        self.plan = plan
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        broker_port = free_ports(1)[0]
        tls = listener != "PLAINTEXT"
        self.kafka = LocalKafka(
            work / "kafka",
            port=broker_port,
            partitions=6,
            tls=tls,
            sasl_users={"bench": uuid.uuid4().hex} if tls else None,
        )
        self.listener = listener
        self.results: dict[str, Any] = {}

    @property
    def kafka_env(self) -> dict[str, str]:
        """The KAFKA_* variables that point a service at the benchmark's listener."""
        return self.kafka.client_settings(self.listener).environment()

    def _port(self) -> int:
        return free_ports(1)[0]

    def new_topic(self, prefix: str) -> str:
        topic = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.kafka.ensure_topics([topic])
        return topic

    def start_producer(self, topic: str, workers: int = 1) -> tuple[Measured, str]:
        """The producer on ``topic``; with ``workers`` > 1 a supervisor and its workers, each
        of them serving (a health check reaches one worker only)."""
        target = f"127.0.0.1:{self._port()}"
        producer = coffee_orders(
            f"producer-{topic}-{workers}",
            ["producer", "--listen", target, "--topic", topic, "--workers", str(workers)],
            self.logs,
            self.kafka_env,
            Supervised if workers > 1 else Measured,
        )  # fmt: skip
        wait_serving(target, producer)
        producer.wait_while_running(
            lambda: producer.output().count("producer listening") >= workers or None,
            60,
            f"{workers} producer workers listening",
        )
        return producer, target

    def kafka_limit(self, topic: str, in_flight: int, total: int) -> dict[str, Any]:
        settings = kafka_settings(None, topic, self.kafka_env)
        return with_per_order(
            kafka_limit_run(settings, in_flight, total, {"broker": self.broker_cpu})
        )

    @functools.cached_property
    def broker_pid(self) -> int:
        pid = self.kafka.status()[0].pid
        if pid is None:
            raise RuntimeError("the benchmark's broker is not running")
        return pid

    def broker_cpu(self) -> float:
        """CPU seconds the broker JVM (the one node this benchmark started) has used so far."""
        return cpu_seconds(self.broker_pid)

    def start_peers(self, topic: str, running: contextlib.ExitStack) -> dict[str, Contender]:
        """The Go peers on the same topic, each stopped when ``running`` closes."""
        brokers = self.kafka.bootstrap_servers
        http_listen, grpc_target = (f"127.0.0.1:{port}" for port in free_ports(2))
        http_peer = go_peers.http_peer(http_listen, brokers, topic, self.logs)
        running.callback(http_peer.stop)
        grpc_peer = go_peers.grpc_peer(grpc_target, brokers, topic, self.logs)
        running.callback(grpc_peer.stop)
        url = go_peers.wait_http_ready(http_listen, http_peer)
        wait_serving(grpc_target, grpc_peer)
        return {
            "go_http": Contender(http_peer, functools.partial(hey.post_order_load, url), None),
            "go_grpc": grpc_contender(grpc_peer, grpc_target),
        }

    # ---- scenarios -------------------------------------------------------------------------

    def place_order(self, contenders: dict[str, Contender], topic: str) -> None:
        """Each contender (ours, the gRPC limit, the Go peers) and the Kafka limit in turn."""
        rows = []
        for concurrency in self.plan.concurrency:
            calls = self.plan.calls[concurrency]
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in [*contenders, "kafka_limit"]}
            for _ in range(self.plan.runs):
                for name, contender in contenders.items():
                    load = functools.partial(contender.unary, concurrency, calls)
                    runs[name].append(measured(contender.process, load, self.broker_cpu))
                runs["kafka_limit"].append(self.kafka_limit(topic, concurrency, calls))
            row = {"concurrency": concurrency, "calls": calls,
                   **{name: median_of(figures) for name, figures in runs.items()},
                   "all_runs": runs}  # fmt: skip
            print(report.one_line(f"PlaceOrder c={concurrency}", row), flush=True)
            rows.append(row)
        self.results["place_order"] = rows

    def place_orders(self, contenders: dict[str, Contender], topic: str) -> None:
        """The stream, for each contender that serves it, and the Kafka limit at its in-flight."""
        total = self.plan.stream_orders
        streams = {name: c.stream for name, c in contenders.items() if c.stream is not None}
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in [*streams, "kafka_limit"]}
        for _ in range(self.plan.runs):
            for name, stream in streams.items():
                load = functools.partial(stream, total)
                runs[name].append(measured(contenders[name].process, load, self.broker_cpu))
            runs["kafka_limit"].append(self.kafka_limit(topic, STREAM_SHAPE.in_flight, total))
        row = {
            "shape": asdict(STREAM_SHAPE) | {"in_flight": STREAM_SHAPE.in_flight},
            "orders": total,
            **{name: median_of(figures) for name, figures in runs.items()},
            "all_runs": runs,
        }
        print(report.one_line("PlaceOrders stream", row), flush=True)
        self.results["place_orders"] = row

    def producer_scenarios(self) -> None:
        topic = self.new_topic("bench_orders")
        with contextlib.ExitStack() as running:
            producer, target = self.start_producer(topic)
            running.callback(producer.stop)
            limit_target = f"127.0.0.1:{self._port()}"
            limit = python_module(
                "grpc-limit", "bench.grpc_limit", ["--listen", limit_target], self.logs
            )
            running.callback(limit.stop)
            wait_serving(limit_target, limit)
            contenders = {"ours": grpc_contender(producer, target),
                          "grpc_limit": grpc_contender(limit, limit_target),
                          **self.start_peers(topic, running)}  # fmt: skip
            for contender in contenders.values():  # connections, producer id, topic metadata
                contender.unary(4, 200)
            self.place_order(contenders, topic)
            self.place_orders(contenders, topic)

    def workers(self) -> None:
        """PlaceOrder at 64 callers, then PlaceOrders, against the producer with 1 and with 2
        worker processes, both running on one topic, runs alternating between them."""
        topic = self.new_topic("bench_workers")
        calls = self.plan.workers_calls
        with contextlib.ExitStack() as running:
            contenders = {}
            for count in WORKERS:
                producer, target = self.start_producer(topic, count)
                running.callback(producer.stop)
                contenders[f"workers_{count}"] = grpc_contender(
                    producer, target, WORKERS_STREAM_SHAPE
                )
            for contender in contenders.values():
                contender.unary(8, 400)  # connections to every worker, producer ids, metadata
            runs: dict[str, list[dict[str, Any]]] = {}
            for _ in range(self.plan.runs):
                for name, contender in contenders.items():
                    load = functools.partial(contender.unary, WORKERS_CALLERS, calls)
                    runs.setdefault(name, []).append(
                        measured(contender.process, load, self.broker_cpu)
                    )
            for _ in range(self.plan.runs):
                for name, contender in contenders.items():
                    assert contender.stream is not None  # grpc_contender serves the stream
                    load = functools.partial(contender.stream, self.plan.stream_orders)
                    runs.setdefault(f"stream_{name}", []).append(
                        measured(contender.process, load, self.broker_cpu)
                    )
        row = {"concurrency": WORKERS_CALLERS, "calls": calls,
               "stream_shape": {**asdict(WORKERS_STREAM_SHAPE),
                                "in_flight": WORKERS_STREAM_SHAPE.in_flight},
               "stream_orders": self.plan.stream_orders,
               **{name: median_of(figures) for name, figures in runs.items()},
               "all_runs": runs}  # fmt: skip
        self.results["workers"] = row
        print(report.workers_line(row), flush=True)

    def end_to_end(self) -> None:
        runs = []
        for index in range(self.plan.runs):
            topic = self.new_topic("bench_e2e")
            producer, target = self.start_producer(topic)
            try:
                runs.append(
                    end_to_end_run(self, target, topic, E2E_RATE, self.plan.e2e_seconds, index)
                )
            finally:
                producer.stop()
        self.results["end_to_end"] = {"rate": E2E_RATE, "seconds": self.plan.e2e_seconds,
                                      "median": median_of(runs), "all_runs": runs}  # fmt: skip
        print(report.one_line("end to end", self.results["end_to_end"]), flush=True)

    def drain(self) -> None:
        """Per run and format, a new topic with the orders (the order state is per topic), the
        consumer in a new group, then the floor of the job on the same records (bench.drain)."""
        orders = self.plan.drain_orders
        runs: dict[str, list[dict[str, Any]]] = {}
        for index in range(self.plan.runs):
            for form in drain.FORMATS:
                topic = self.new_topic(f"bench_drain_{form}")
                drain.fill(kafka_settings(None, topic, self.kafka_env), orders, form)
                runs.setdefault(form, []).append(drain_run(self, topic, orders, f"{form}-{index}"))
                floor_log = self.logs / f"floor-{topic}.log"
                floor = drain.floor_drain(topic, orders, floor_log, self.kafka_env)
                runs.setdefault(f"floor_{form}", []).append(floor)
        results: dict[str, Any] = {"orders": orders}
        for what, each in runs.items():
            results[what] = {"median": median_of(each), "all_runs": each}
        results["median"] = results["ours"]["median"]  # the figure earlier reports quote
        self.results["drain"] = results
        print(report.drain_line(results), flush=True)

    def soak(self) -> None:
        topic = self.new_topic("bench_soak")
        producer, target = self.start_producer(topic)
        try:
            self.results["soak"] = soak_run(
                self, producer, target, topic, E2E_RATE, self.plan.soak_seconds,
                self.plan.soak_sample_s,
            )  # fmt: skip
        finally:
            producer.stop()
        print(report.one_line("soak", self.results["soak"]), flush=True)

    def dead_letter_flood(self) -> None:
        self.results["flood"] = flood(self, self.plan.flood_bad, FLOOD_BAD_PER_GOOD)
        print(report.one_line("dead-letter flood (bad records)", self.results["flood"]), flush=True)


def machine() -> dict[str, Any]:
    import confluent_kafka

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "confluent_kafka": confluent_kafka.__version__,
        "kafka": KAFKA_VERSION,
        "librdkafka": confluent_kafka.libversion()[0],
        "ghz": ghz.GHZ_VERSION,
        "hey": hey.HEY_VERSION,
        "go_peers": go_peers.versions(),
        "kernel": platform.release(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="coffee-orders benchmark")
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny numbers (CI)")
    parser.add_argument("--write-docs", action="store_true", help="write benchmarks.md/json/png")
    parser.add_argument("--docs-dir", default=str(ROOT / "docs"), help="where --write-docs writes")
    parser.add_argument("--work-dir", help="broker data and logs (default: a temporary dir)")
    parser.add_argument(
        "--kafka-listener", choices=["PLAINTEXT", "SSL", "SASL_SSL"], default="PLAINTEXT",
        help="how the services and the Kafka limit connect to the broker (default PLAINTEXT)",
    )  # fmt: skip
    parser.add_argument(
        "--only", nargs="*", default=["producer", "workers", "e2e", "drain", "soak", "flood"],
        choices=["producer", "workers", "e2e", "drain", "soak", "flood"],
        help="scenarios to run",
    )  # fmt: skip
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    ghz.ghz_path()  # fail early with how to install it
    hey.hey_path()
    streaming.build()
    go_peers.build()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="coffee-bench-"))
    bench = Bench(plan, work, args.kafka_listener)
    started = time.monotonic()
    print(f"benchmark: work dir {work}; starting Kafka", flush=True)
    bench.kafka.up()
    try:
        scenarios = {"producer": bench.producer_scenarios, "workers": bench.workers,
                     "e2e": bench.end_to_end,
                     "drain": bench.drain, "soak": bench.soak,
                     "flood": bench.dead_letter_flood}  # fmt: skip
        for name in args.only:
            scenarios[name]()
    except Exception:
        print(f"benchmark failed; logs in {bench.logs}", file=sys.stderr)
        raise
    finally:
        bench.kafka.down()
        # whatever was measured is kept, also when a later scenario failed
        results = {"machine": machine(), "plan": asdict(plan), "smoke": args.smoke,
                   "kafka_listener": args.kafka_listener,
                   "seconds": time.monotonic() - started, **bench.results}  # fmt: skip
        results["targets"] = report.targets(results)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=2))
        print(f"results: {out}")
    if args.write_docs:
        report.write_docs(results, Path(args.docs_dir))
        print(f"wrote benchmarks.md, benchmarks.json, benchmarks.png in {args.docs_dir}")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
