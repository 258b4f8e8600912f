"""What the order state costs: drain with and without it, restore time and memory per order.

``.venv/bin/python -m bench.order_state [--orders N] [--window-orders M] [--runs R]``

- drain: a new group reads N orders already on the topic, with the order state on (transactions,
  the duplicate check, the events) and off (COFFEE_ORDER_STATE=false: stored offsets), the two
  alternating, R runs each; orders per second (median).
- restore: M order-state events on the topic (the window full), then a new ``OrderStateView``
  reads them: seconds until restored, and the process's resident memory before and after.
- memory per order: M events added to an ``OrderIndex`` in a fresh process, its resident memory
  before and after, divided by M.

Writes bench/results/order_state.json; docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from coffee_orders_common.order_state import State, StateEvent, identity, now_ms
from coffee_orders_common.order_state_view import OrderStateView, view_config
from coffee_orders_common.validation import Order
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.consumer_runs import drain_run, fill_topic
from bench.run import FULL, RESULTS_DIR, Bench, machine
from bench.stats import median

STATE_OFF = {"COFFEE_ORDER_STATE": "false"}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def event(number: int) -> StateEvent:
    order_id = f"bench-{number:09d}"
    return StateEvent(
        order_id,
        State.PROCESSED,
        identity(order_id, Order(customer_name=f"Customer {number}", coffee_type="Latte")),
        now_ms(),
        "bench-host/1234 coffee-orders-consumer-5b0e6f3c-1d2e-4a5b-9c8d-7e6f5a4b3c2d",
        "coffee_orders",
        number % 6,
        number,
    )


def index_memory(orders: int) -> dict[str, float]:
    """Run in a fresh process: the OrderIndex's resident memory for ``orders`` orders."""
    code = (
        "import gc, json, sys\n"
        "from bench.order_state import event, rss_mb\n"
        "from coffee_orders_common.order_state import OrderIndex\n"
        "n = int(sys.argv[1])\n"
        "events = (event(i) for i in range(n))\n"
        "gc.collect(); before = rss_mb()\n"
        "index = OrderIndex(86400, n)\n"
        "for e in events: index.add(e)\n"
        "gc.collect(); after = rss_mb()\n"
        "print(json.dumps({'orders': len(index), 'rss_before_mb': before, "
        "'rss_after_mb': after, 'bytes_per_order': (after - before) * 1048576 / n}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(orders)], capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def fill_state_topic(bootstrap: str, topic: str, orders: int) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"cleanup.policy": "compact,delete", "retention.ms": str(86_400_000)}
    admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"}
    )
    started = time.monotonic()
    for number in range(orders):
        item = event(number)
        while True:
            try:
                producer.produce(topic, key=item.key(), value=item.value())
                break
            except BufferError:
                producer.poll(0.1)
        if number % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return time.monotonic() - started


def restore(bootstrap: str, topic: str, orders: int) -> dict[str, float]:
    before = rss_mb()
    config = view_config({"bootstrap.servers": bootstrap}, "bench-view")
    view = OrderStateView(config, topic, 86_400, orders)
    started = time.monotonic()
    view.start()
    if not view.restored.wait(600):
        raise AssertionError("the view did not restore within 600 s")
    seconds = time.monotonic() - started
    after = rss_mb()
    held = view.orders
    view.stop()
    return {
        "orders": held,
        "seconds": seconds,
        "orders_per_second": held / seconds,
        "rss_before_mb": before,
        "rss_after_mb": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders each drain reads")
    parser.add_argument("--window-orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "order_state.json")
    args = parser.parse_args()
    plan = replace(FULL, runs=args.runs, drain_orders=args.orders)
    results: dict[str, Any] = {"machine": machine(), "orders": args.orders, "runs": args.runs}
    results["index_memory"] = index_memory(args.window_orders)
    print("index memory:", json.dumps(results["index_memory"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-order-state-") as work:
        bench = Bench(plan, Path(work))
        bench.kafka.up()
        try:
            bootstrap = bench.kafka.bootstrap_servers
            topic = bench.new_topic("bench_drain")
            results["fill"] = fill_topic(bench, topic, args.orders)
            on, off = [], []
            for run in range(args.runs):  # alternating, so that load drifts hit both alike
                # An order-state topic per run: with a shared one, a new group would skip every
                # order the earlier runs processed (what the order state is for).
                state = {"KAFKA_ORDER_STATE_TOPIC": f"{topic}.order-state-{run}"}
                on.append(drain_run(bench, topic, args.orders, 2 * run, state))
                off.append(drain_run(bench, topic, args.orders, 2 * run + 1, STATE_OFF))
                print(f"drain run {run}: on {on[-1]['per_second']:.0f}/s, "
                      f"off {off[-1]['per_second']:.0f}/s", flush=True)  # fmt: skip
            results["drain"] = {
                "with_order_state": {"median_per_second": median([r["per_second"] for r in on]),
                                     "runs": on},
                "without_order_state": {"median_per_second": median([r["per_second"] for r in off]),
                                        "runs": off},
            }  # fmt: skip
            state_topic = f"bench_state_{int(time.time())}"
            results["restore_fill_seconds"] = fill_state_topic(
                bootstrap, state_topic, args.window_orders
            )
            results["restore"] = restore(bootstrap, state_topic, args.window_orders)
            print("restore:", json.dumps(results["restore"]), flush=True)
        except BaseException:
            for log in sorted(bench.logs.glob("*.log")):  # what the processes said, then fail
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", flush=True)
            raise
        finally:
            bench.kafka.down()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "machine"}, indent=1)[:3000])


if __name__ == "__main__":
    main()
