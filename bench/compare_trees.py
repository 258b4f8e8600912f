"""Before/after on the same machine in the same run: two source trees, alternating runs.

    git worktree add /tmp/before <commit>
    python -m bench.compare_trees --before /tmp/before [--runs 3]

Starts one broker, the producer of each tree side by side (each tree's own code first on
PYTHONPATH), and alternates: PlaceOrder at 64 callers (ghz) on one, then the other; PlaceOrders
(streamload, 2000 in flight) the same way. The consumers' drain of both trees is
``bench.drain --before``. The producers' CPU per confirmed order is read around each run. Prints
the medians as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from coffee_orders_localkafka import LocalKafka
from coffee_orders_localkafka.cluster import free_ports

from bench import ghz, streaming
from bench.ghz import LoadResult
from bench.processes import Measured, tree_env
from bench.run import measured, wait_serving
from bench.stats import median

# compare_trees' figure name -> the key bench.run.measured gives it
_FIGURES = {"per_s": "per_second", "p99_ms": "p99_ms", "cpu_us": "cpu_us_per_order"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a checkout of the earlier commit")
    parser.add_argument("--after", default=str(ghz.ROOT), help="default: this tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--stream-orders", type=int, default=200_000)
    args = parser.parse_args()
    trees = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    work = Path(tempfile.mkdtemp(prefix="coffee-compare-"))
    logs = work / "logs"
    logs.mkdir()
    broker_port, *ports = free_ports(12)
    kafka = LocalKafka(work / "kafka", port=broker_port)
    kafka.up()
    running: list[Measured] = []
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    try:
        targets: dict[str, str] = {}
        producers: dict[str, Measured] = {}
        for name, tree in trees.items():
            target = f"127.0.0.1:{ports.pop()}"
            producer = Measured(
                logs / f"producer-{name}.log",
                *["producer", "--listen", target, "--brokers", kafka.bootstrap_servers],
                env=tree_env(tree),
            )
            running.append(producer)
            wait_serving(target, producer)
            ghz.place_order_load(target, 4, 200)  # warm-up
            targets[name] = target
            producers[name] = producer
        streaming.build()
        shape = streaming.StreamShape()
        loads: dict[str, Callable[[str], LoadResult]] = {
            "place_order_64": partial(ghz.place_order_load, concurrency=64, total=args.calls),
            "place_orders": partial(
                streaming.place_orders_load, shape=shape, total=args.stream_orders
            ),
        }
        for scenario, load in loads.items():
            for _ in range(args.runs):
                for name, target in targets.items():
                    one_run = measured(producers[name], partial(load, target))
                    for figure, key in _FIGURES.items():
                        figures[name].setdefault(f"{scenario}_{figure}", []).append(one_run[key])
    finally:
        for process in running:
            process.stop()
        kafka.down()
    summary: dict[str, Any] = {
        name: {key: {"median": median(values), "runs": values} for key, values in f.items()}
        for name, f in figures.items()
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
