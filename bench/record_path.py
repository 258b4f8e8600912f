"""Micro-benchmark of the consumer's work per order, without Kafka: decode, dedup, log line.

    .venv/bin/python -m bench.record_path [--orders N] [--repeats R]

Each stage runs over the same N messages R times; the best run's CPU time (process_time, so a
busy machine skews it less than wall time) divided by N is printed in nanoseconds per order.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

from coffee_orders_common import wire
from coffee_orders_common.logs import (
    BatchingStreamHandler,
    JsonFormatter,
    TextFormatter,
    batched_logs,
)
from coffee_orders_common.order_state import OrderIndex, State, StateEvent, identity, now_ms
from coffee_orders_common.validation import Order
from coffee_orders_consumer.decoder import DecodedOrder, decode
from confluent_kafka import Message

BATCH = 500  # the consume loop's batch: one flush of log lines and of the dedup state per batch


def _messages(count: int) -> list[Message]:
    orders = [Order(f"Customer {i}", "Flat White") for i in range(count)]
    ids = [wire.order_id_for(f"bench-{i}") for i in range(count)]
    return [
        Message(
            topic="coffee_orders",
            partition=0,
            offset=i,
            key=ids[i].encode(),
            value=wire.encode_order(orders[i]),
            headers=wire.order_headers(ids[i]),
        )
        for i in range(count)
    ]


def _best_ns_per_order(stage: Callable[[], None], orders: int, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        stage()
        runs.append(time.process_time() - started)
    return min(runs) / orders * 1e9


def _log_stage(formatter: logging.Formatter, decoded: list[DecodedOrder]) -> Callable[[], None]:
    """Log a "brewing" line per order in batches, as the consume loop does, into /dev/null."""
    handler = BatchingStreamHandler(open("/dev/null", "w"))  # noqa: SIM115 (lives with the run)
    handler.setFormatter(formatter)
    log = logging.getLogger(f"bench.record_path.{type(formatter).__name__}")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)

    def run() -> None:
        for start in range(0, len(decoded), BATCH):
            with batched_logs():
                for offset, item in enumerate(decoded[start : start + BATCH], start):
                    order = item.order
                    log.info(
                        f"brewing {order.coffee_type} for {order.customer_name}",
                        extra={
                            "fields": {"order_id": item.order_id, "partition": 0, "offset": offset}
                        },
                    )

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    messages = _messages(args.orders)
    decoded = [decode(m) for m in messages]

    def decode_all() -> None:
        for message in messages:
            decode(message)

    def dedup_all() -> None:
        index = OrderIndex(3600, 1_000_000)
        for offset, item in enumerate(decoded):
            digest = identity(item.order_id, item.order)
            if not index.processed(item.order_id, digest):
                event = StateEvent(
                    item.order_id, State.PROCESSED, digest, now_ms(), "bench", "t", 0, offset
                )
                index.add(event)
                event.value()

    stages = {
        "decode": decode_all,
        "dedup (identity, check, event, index)": dedup_all,
        "log line, text": _log_stage(TextFormatter(), decoded),
        "log line, json": _log_stage(JsonFormatter(), decoded),
    }
    for name, stage in stages.items():
        figure = _best_ns_per_order(stage, args.orders, args.repeats)
        print(f"{name:40s} {figure:8.0f} ns/order", flush=True)


if __name__ == "__main__":
    main()
