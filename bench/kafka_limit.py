"""The Kafka limit: confluent-kafka producing straight to the broker, a fixed number in flight.

Same producer settings as the service (acks=all, idempotence, linger), same message
(the original format's JSON, the order_id key and headers). Each message waits for its own
delivery report; every report produces the next message, so exactly ``--in-flight`` messages
are unconfirmed at any time.
Prints one JSON object: confirmed per second, delivery latency percentiles, and this process's CPU
time over the measured window (``cpu_seconds``: all threads, librdkafka's included). Kafka
security settings come from the same KAFKA_* environment variables the services read.

    python -m bench.kafka_limit --brokers 127.0.0.1:9092 --topic coffee_orders --in-flight 64
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable, Mapping

from coffee_orders_common import wire
from coffee_orders_common.kafka_config import producer_config
from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.settings import ServiceSettings, load_settings
from coffee_orders_common.validation import Order
from confluent_kafka import KafkaError, Message, Producer

from bench.stats import percentile


def kafka_settings(
    brokers: str | None, topic: str, environ: dict[str, str] | None = None
) -> KafkaSettings:
    """The services' Kafka settings: flags over KAFKA_* variables (``environ``, default the
    process environment) over defaults."""
    flags = {"kafka.brokers": brokers, "kafka.topic": topic}
    return load_settings(ServiceSettings, flags=flags, environ=environ).kafka


def run(
    settings: KafkaSettings,
    in_flight: int,
    total: int,
    cpu_clocks: Mapping[str, Callable[[], float]] | None = None,
) -> dict[str, float]:
    """``total`` messages, ``in_flight`` at a time; ``cpu_clocks`` (e.g. the broker's) are read
    at the start and end of the measured window, as ``<name>_cpu_seconds``."""
    topic = settings.topic
    producer = Producer(producer_config(settings, client_id="bench-kafka-limit"))
    value = wire.encode_order(Order("John Doe", "Latte"))
    latencies: list[float] = []
    failed = 0
    sent = 0

    def send() -> None:
        nonlocal sent
        order_id = str(uuid.uuid4())
        started = time.perf_counter()

        def delivered(error: KafkaError | None, _: Message) -> None:
            nonlocal failed
            latencies.append(time.perf_counter() - started)
            if error is not None:
                failed += 1
            if sent < total:
                send()

        producer.produce(
            topic,
            value=value,
            key=order_id.encode(),
            headers=wire.order_headers(order_id),
            on_delivery=delivered,
        )
        sent += 1

    producer.produce(topic, value=value)  # warm-up: connection, producer id, topic metadata
    producer.flush(30)
    clocks = {"cpu_seconds": time.process_time} | {
        f"{name}_cpu_seconds": clock for name, clock in (cpu_clocks or {}).items()
    }
    cpu_before = {key: clock() for key, clock in clocks.items()}
    began = time.perf_counter()
    for _ in range(min(in_flight, total)):
        send()
    while len(latencies) < total:
        producer.poll(0.1)
    seconds = time.perf_counter() - began
    cpu = {key: clock() - cpu_before[key] for key, clock in clocks.items()}
    latencies.sort()
    return {
        "sent": sent,
        "ok": len(latencies) - failed,
        "failed": failed,
        "seconds": seconds,
        "per_second": (len(latencies) - failed) / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": latencies[-1] * 1000,
        **cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", help="bootstrap servers (default $KAFKA_BROKERS)")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--in-flight", type=int, required=True)
    parser.add_argument("--orders", type=int, default=50_000)
    args = parser.parse_args()
    settings = kafka_settings(args.brokers, args.topic)
    print(json.dumps(run(settings, args.in_flight, args.orders)))


if __name__ == "__main__":
    main()
