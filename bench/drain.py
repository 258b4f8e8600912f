"""The consumer's drain against the floor of the job, in both formats, side by side.

    .venv/bin/python -m bench.drain [--orders 200000] [--runs 3] [--before TREE]

Starts its own broker. Each run, for each format, puts ``--orders`` orders on a new topic per
consumer (the order state is per topic: a second group on the same topic would find every order
processed already) and has a new group of each tree's consumer read them all, the order state on
(the default: a transaction per batch, the duplicate check, the events), its text log to a file;
then the floor (``bench.drain_floor``: consume(1000), json.loads, one formatted line per order to
a file) reads the same records. The formats: ours (the producer's: JSON value, the order_id as
key and header, content-type) and the original one (the JSON value alone). ``--before`` adds the
consumer of an earlier checkout (``git worktree add``), runs alternating. Prints the medians as
JSON and writes them to bench/results/drain-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from coffee_orders_common import wire
from coffee_orders_common.kafka_config import producer_config
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.validation import Order
from confluent_kafka import Producer

from bench import ghz
from bench.consumer_runs import drain_run
from bench.kafka_limit import kafka_settings
from bench.kafka_limit import run as kafka_limit_run
from bench.processes import tree_env
from bench.stats import median

FORMATS = ("ours", "original")
ORIGINAL_VALUE = wire.encode_order(Order("John Doe", "Latte"))  # the JSON value alone


def fill(settings: KafkaSettings, orders: int, form: str) -> None:
    """``orders`` orders in format ``form`` on ``settings.topic``."""
    if form == "ours":
        kafka_limit_run(settings, 20_000, orders)
        return
    producer = Producer(producer_config(settings, client_id="bench-drain-fill"))
    for _ in range(orders):
        while True:
            try:
                producer.produce(settings.topic, ORIGINAL_VALUE)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
    if producer.flush(60) != 0:
        raise RuntimeError(f"{settings.topic}: not every record was delivered")


def floor_drain(topic: str, orders: int, log: Path, kafka_env: dict[str, str]) -> dict[str, float]:
    """``bench.drain_floor`` on ``topic`` in a process of its own (``kafka_env``: the KAFKA_*
    variables that point it at the broker)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.drain_floor", "--topic", topic, "--orders", str(orders),
         "--log", str(log)],
        capture_output=True, text=True, check=True, timeout=900, cwd=ghz.ROOT,
        env={**os.environ, **kafka_env},
    )  # fmt: skip
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", help="an earlier checkout whose consumer runs beside")
    parser.add_argument("--after", default=str(ghz.ROOT), help="default: this tree")
    args = parser.parse_args()
    from bench.run import FULL, RESULTS_DIR, Bench  # bench.run runs this module's pieces too

    trees = {"after": Path(args.after).resolve()}
    if args.before:
        trees = {"before": Path(args.before).resolve(), **trees}
    bench = Bench(FULL, Path(tempfile.mkdtemp(prefix="coffee-drain-")))
    bench.kafka.up()
    runs: dict[str, list[dict[str, Any]]] = {}
    started = time.monotonic()
    try:
        for run in range(args.runs):
            order = list(trees.items()) if run % 2 == 0 else list(reversed(trees.items()))
            for form in FORMATS:
                topics = []
                for name, tree in order:
                    topic = bench.new_topic(f"drain_{form}_{name}_{run}")
                    fill(kafka_settings(None, topic, bench.kafka_env), args.orders, form)
                    topics.append(topic)
                    label = f"{name}-{form}-{run}"
                    figures = drain_run(bench, topic, args.orders, label, tree_env(tree))
                    runs.setdefault(f"{name} {form}", []).append(figures)
                    print(f"run {run} {name} {form}: {figures}", flush=True)
                floor_log = bench.logs / f"floor-{form}-{run}.log"
                figures = floor_drain(topics[0], args.orders, floor_log, bench.kafka_env)
                runs.setdefault(f"floor {form}", []).append(figures)
                print(f"run {run} floor {form}: {figures}", flush=True)
    finally:
        bench.kafka.down()
    summary: dict[str, Any] = {
        "orders": args.orders,
        "runs": args.runs,
        "trees": {name: str(tree) for name, tree in trees.items()},
        "seconds": round(time.monotonic() - started),
        "medians": {
            what: {key: median([r[key] for r in each]) for key in each[0]}
            for what, each in runs.items()
        },
        "all": runs,
    }
    medians = summary["medians"]
    summary["of_floor"] = {
        what: medians[what]["per_second"] / medians[f"floor {what.split()[-1]}"]["per_second"]
        for what in medians
        if not what.startswith("floor")
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (RESULTS_DIR / f"drain-{stamp}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("medians", "of_floor", "seconds")}, indent=2))


if __name__ == "__main__":
    main()
