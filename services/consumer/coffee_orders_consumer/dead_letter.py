"""Copy bad messages to the dead-letter topic, waiting for Kafka to confirm each copy."""

from __future__ import annotations

import logging
import time
from typing import Any

from coffee_orders_common import wire
from confluent_kafka import KafkaError, Message, Producer

ERROR_KIND_HEADER = "x-error-kind"
ERROR_REASON_HEADER = "x-error-reason"
ORIGIN_HEADERS = ("x-original-topic", "x-original-partition", "x-original-offset")


class DeadLetters:
    def __init__(self, config: dict[str, Any], topic: str, timeout_s: float):
        self.topic = topic
        self._timeout_s = timeout_s
        self._producer = Producer({**config, "logger": logging.getLogger("librdkafka")})

    def send(self, message: Message, kind: str, reason: str) -> KafkaError | None:
        """Copy ``message`` with its original headers plus the error; None once Kafka has it."""
        origin = (message.topic() or "", str(message.partition()), str(message.offset()))
        headers: list[tuple[str, str | bytes | None]] = [
            *(wire.message_headers(message) or []),  # none when their names are not UTF-8
            (ERROR_KIND_HEADER, kind),
            (ERROR_REASON_HEADER, reason),
            *zip(ORIGIN_HEADERS, origin, strict=True),
        ]
        outcome: list[KafkaError | None] = []

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            outcome.append(error)

        try:
            self._producer.produce(
                self.topic,
                value=message.value(),
                key=message.key(),
                headers=headers,
                on_delivery=on_delivery,
            )
        except BufferError:
            return KafkaError(KafkaError._QUEUE_FULL)
        deadline = time.monotonic() + self._timeout_s + 1
        while not outcome and time.monotonic() < deadline:
            self._producer.poll(0.1)
        return outcome[0] if outcome else KafkaError(KafkaError._MSG_TIMED_OUT)

    def close(self, timeout_s: float = 5.0) -> None:
        self._producer.flush(timeout_s)
