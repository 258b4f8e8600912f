"""Scenarios that involve the consumer daemon: end to end, drain, soak."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coffee_orders_devtools.consumer_status import status

from bench.paced import PacedCall, place_at_rate
from bench.processes import Measured, coffee_orders
from bench.stats import percentile

if TYPE_CHECKING:
    from bench.run import Bench


def start_consumer(
    bench: Bench, topic: str, name: str, env: dict[str, str] | None = None
) -> tuple[Measured, str]:
    """A consumer in a new group (so it reads from the oldest offset), its log in a file;
    ``env`` adds to the benchmark's Kafka variables."""
    from bench.run import wait_serving

    target = f"127.0.0.1:{bench._port()}"
    consumer = coffee_orders(
        name,
        ["consumer", "--listen", target, "--topic", topic, "--group", f"{name}-group"],
        bench.logs,
        {**bench.kafka_env, **(env or {})},
    )  # fmt: skip
    wait_serving(target, consumer)
    return consumer, target


def processed(target: str) -> int:
    return int(status(target).counters.processed)


def wait_assigned(target: str, consumer: Measured, timeout_s: float = 60.0) -> None:
    """Wait until the consumer owns partitions, so a measurement does not include joining."""
    consumer.wait_while_running(
        lambda: bool(status(target).partitions), timeout_s, f"{consumer.name} owning partitions"
    )


def wait_processed(target: str, consumer: Measured, expected: int, timeout_s: float) -> float:
    """Poll GetStatus until ``expected`` orders are processed; returns when (monotonic)."""
    return consumer.wait_while_running(
        lambda: time.monotonic() if processed(target) >= expected else None,
        timeout_s,
        f"{consumer.name} processing {expected} orders",
    )


def brewed_times(consumer: Measured) -> dict[str, float]:
    """order_id -> when the consumer logged it as processed (epoch seconds, ms resolution).

    Lines look like ``2026-11-24T10:00:00.123+00:00 INFO coffee_orders.consumer brewing Latte
    for guest 7 order_id=... partition=2 offset=41``.
    """
    times = {}
    for line in consumer.output().splitlines():
        if " brewing " not in line or " order_id=" not in line:
            continue
        order_id = line.split(" order_id=", 1)[1].split(" ", 1)[0]
        times[order_id] = datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
    return times


def end_to_end_run(
    bench: Bench,
    target: str,
    topic: str,
    rate: float,
    seconds: float,
    index: int | str,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """PlaceOrder at ``rate``/s; latency = consumer's log time - call start, per order
    (``env`` adds to the consumer's environment)."""
    consumer, status_target = start_consumer(bench, topic, f"consumer-e2e-{index}", env)
    try:
        wait_assigned(status_target, consumer)
        run = asyncio.run(place_at_rate(target, rate, seconds, f"e2e-{index}"))
        confirmed = run.ok()
        wait_processed(status_target, consumer, len(confirmed), 60)
        brewed = brewed_times(consumer)
    finally:
        consumer.stop()
    latencies = sorted(brewed[c.order_id] - c.sent_at for c in confirmed if c.order_id in brewed)
    return {
        "sent": len(run.calls),
        "ok": len(confirmed),
        "consumed": len(latencies),
        "lost": len(confirmed) - len(latencies),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
        "place_order_p99_ms": _place_order_p99(confirmed),
    }


def _place_order_p99(calls: list[PacedCall]) -> float:
    return percentile(sorted(c.latency_s for c in calls), 0.99) * 1000


def fill_topic(bench: Bench, topic: str, orders: int) -> dict[str, Any]:
    """Put ``orders`` orders (our wire format) on the topic, fast, before a drain."""
    return bench.kafka_limit(topic, min(20_000, orders), orders)


def drain_run(
    bench: Bench, topic: str, orders: int, index: int | str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """A new consumer group reads every order already on the topic; orders per second."""
    started = time.monotonic()
    consumer, target = start_consumer(bench, topic, f"consumer-drain-{index}", env)
    try:
        ready = time.monotonic()
        first = wait_processed(target, consumer, 1, 60)
        cpu_before = consumer.cpu_seconds()
        done = wait_processed(target, consumer, orders, 600)
        cpu = consumer.cpu_seconds() - cpu_before
        peak = consumer.peak_rss_mb()
    finally:
        consumer.stop()
    return {
        "orders": orders,
        "seconds": done - first,
        "per_second": orders / (done - first),
        "seconds_from_start": done - started,
        "join_seconds": first - ready,
        "cpu_percent": 100 * cpu / (done - first),
        "cpu_us_per_order": 1e6 * cpu / orders,
        "peak_rss_mb": peak,
    }


def soak_run(
    bench: Bench,
    producer: Measured,
    target: str,
    topic: str,
    rate: float,
    seconds: float,
    sample_s: float,
) -> dict[str, Any]:
    """PlaceOrder at a fixed rate for ``seconds`` with the consumer on; sample each window."""
    consumer, status_target = start_consumer(bench, topic, "consumer-soak")
    samples = []
    totals = {"sent": 0, "ok": 0}
    try:
        wait_assigned(status_target, consumer)
        windows = max(1, round(seconds / sample_s))
        for window in range(windows):
            run = asyncio.run(place_at_rate(target, rate, sample_s, f"soak-{window}"))
            ok = run.ok()
            totals["sent"] += len(run.calls)
            totals["ok"] += len(ok)
            latencies = sorted(c.latency_s for c in ok)
            samples.append(
                {
                    "at_s": (window + 1) * sample_s,
                    "ok": len(ok),
                    "errors": len(run.calls) - len(ok),
                    "p50_ms": percentile(latencies, 0.5) * 1000,
                    "p99_ms": percentile(latencies, 0.99) * 1000,
                    "producer_rss_mb": producer.rss_mb(),
                    "consumer_rss_mb": consumer.rss_mb(),
                }
            )
        wait_processed(status_target, consumer, totals["ok"], 120)
        consumed = processed(status_target)
    finally:
        consumer.stop()
    return {
        "rate": rate,
        "seconds": seconds,
        **totals,
        "consumed": consumed,
        "lost": totals["ok"] - min(consumed, totals["ok"]),
        "producer_peak_rss_mb": producer.peak_rss_mb(),
        "samples": samples,
    }
