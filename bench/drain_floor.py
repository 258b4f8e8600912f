"""The floor of the consumer's job in Python: what a drain cannot beat from this language.

A new group reads ``--orders`` records of the topic with confluent-kafka's ``consume(1000)``,
``json.loads`` of each value and one formatted line per order written to a file: no
validation, no duplicate check, no order state, no offsets committed. Prints one JSON object:
orders per second from the first record to the last, and this process's CPU per order.

    python -m bench.drain_floor --brokers 127.0.0.1:9092 --topic t --orders 200000 --log f.log
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime

from coffee_orders_common.kafka_config import consumer_config
from confluent_kafka import Consumer

from bench.kafka_limit import kafka_settings


def drain(
    brokers: str | None, topic: str, orders: int, log_path: str, timeout_s: float
) -> dict[str, float]:
    settings = kafka_settings(brokers, topic)  # KAFKA_* variables for the security settings
    consumer = Consumer(
        {
            **consumer_config(settings, client_id="bench-drain-floor"),
            "group.id": f"bench-floor-{uuid.uuid4()}",
            "enable.auto.commit": "false",
        }
    )
    consumer.subscribe([topic])
    seen = 0
    first = 0.0
    deadline = time.monotonic() + timeout_s
    with open(log_path, "w", encoding="utf-8") as log:
        while seen < orders:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {seen} of {orders} records in {timeout_s:g} s")
            messages = consumer.consume(1000, 1.0)
            if messages and not first:
                first, cpu_first = time.monotonic(), time.process_time()
            lines = []
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            for message in messages:
                if message.error() is not None:
                    continue
                order = json.loads(message.value() or b"")
                lines.append(
                    f"{stamp} INFO brewing {order['coffee_type']} for {order['customer_name']} "
                    f"partition={message.partition()} offset={message.offset()}\n"
                )
            log.write("".join(lines))
            seen += len(lines)
    seconds = time.monotonic() - first
    cpu = time.process_time() - cpu_first
    consumer.close()
    return {"orders": seen, "per_second": seen / seconds, "cpu_us_per_order": 1e6 * cpu / seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", help="bootstrap servers (default $KAFKA_BROKERS)")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--log", required=True, help="the file the lines go to")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    print(json.dumps(drain(args.brokers, args.topic, args.orders, args.log, args.timeout)))


if __name__ == "__main__":
    main()
