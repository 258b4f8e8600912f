"""One long-lived confluent-kafka Producer, its delivery reports bridged to asyncio futures.

A poll thread serves delivery reports and resolves each RPC's future with
``loop.call_soon_threadsafe``; the event loop never blocks on ``poll`` or ``flush``.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from confluent_kafka import KafkaError, Message, Producer

from .metrics import KAFKA_QUEUE

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Kafka reported that a message was not delivered."""

    def __init__(self, error: KafkaError):
        super().__init__(error.str())
        self.error = error


class QueueFull(Exception):
    """librdkafka's local queue has no room (back-pressure)."""


class Publisher:
    def __init__(self, config: dict[str, str]):
        self._producer = Producer(
            {**config, "error_cb": self._on_client_error, "logger": logging.getLogger("librdkafka")}
        )
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._last_client_error: str | None = None

    def start(self) -> None:
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)
            KAFKA_QUEUE.set(len(self._producer))

    def _on_client_error(self, error: KafkaError) -> None:
        text = f"{error.name()}: {error.str()}"
        if text != self._last_client_error:  # librdkafka repeats these; log each change once
            self._last_client_error = text
            log.warning("Kafka client error", extra={"fields": {"error": text}})

    def publish(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, str | bytes | None]]
    ) -> asyncio.Future[Message]:
        """Queue one message; the future resolves with it once Kafka confirmed delivery.

        Raises QueueFull at once when the local queue is full, or DeliveryFailed for errors
        librdkafka reports synchronously (unknown topic in its cache, message too large).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def settle(error: KafkaError | None, message: Message) -> None:
            if future.done():  # the caller gave up (deadline, cancel); nothing to tell
                return
            if error is not None:
                future.set_exception(DeliveryFailed(error))
            else:
                future.set_result(message)

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            loop.call_soon_threadsafe(settle, error, message)

        try:
            self._producer.produce(
                topic, value=value, key=key, headers=headers, on_delivery=on_delivery
            )
        except BufferError:
            raise QueueFull() from None
        except Exception as exc:  # KafkaException carries a KafkaError
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if error is None:
                raise
            raise DeliveryFailed(error) from None
        return future

    def close(self, timeout_s: float) -> int:
        """Flush what is queued (bounded by ``timeout_s``), stop polling; returns undelivered."""
        remaining = int(self._producer.flush(max(timeout_s, 0.0)))
        self._stopping.set()
        self._poller.join(timeout=5)
        return remaining
