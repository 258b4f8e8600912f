"""One long-lived confluent-kafka Producer, its delivery reports handed to callbacks on the loop.

Delivery reports are served by ``poll(0)`` on the event loop itself, every millisecond while
messages are in flight and every 100 ms otherwise. A separate poll thread would have to take
the GIL back for every single report while the loop thread holds it to serve gRPC; profiling
showed that hand-over costing more than the reports themselves. ``poll(0)`` never blocks, so
the loop does not either. ``close`` flushes on a worker thread; reports it serves there reach
the loop through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from coffee_orders_common.kafka_errors import (
    FatalKafkaError,
    RepeatedErrorFilter,
    describe,
    is_fatal,
)
from coffee_orders_common.liveness import Heartbeat
from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)
_BUSY_POLL_S = 0.001
_IDLE_POLL_S = 0.1


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
        self._client_errors = RepeatedErrorFilter()
        self._fatal: KafkaError | None = None
        self._poller: asyncio.Task[None] | None = None
        self._loop_thread = threading.get_ident()
        self._produced = asyncio.Event()
        self._closing = False
        self.heartbeat = Heartbeat()  # beaten by the poller at least every 100 ms

    def start(self) -> None:
        """Start serving delivery reports on the running event loop."""
        self._loop_thread = threading.get_ident()
        self._loop = asyncio.get_running_loop()
        self._poller = self._loop.create_task(self._poll_loop())

    @property
    def queued(self) -> int:
        """Messages in librdkafka's local queue (the kafka_queue_messages gauge)."""
        return len(self._producer)

    @property
    def poller(self) -> asyncio.Task[None]:
        """The delivery-report poller, once started (for the watchdog)."""
        assert self._poller is not None, "start() first"
        return self._poller

    async def _poll_loop(self) -> None:
        producer = self._producer
        while not self._closing:
            self.heartbeat.beat()
            producer.poll(0)
            if self._fatal is not None:  # ends the poller: the watchdog stops the service
                raise FatalKafkaError(
                    f"{describe(self._fatal)} (a fatal Kafka error: the producer's Kafka "
                    "client cannot send again; a new process gets a new one)"
                )
            if len(producer):
                await asyncio.sleep(_BUSY_POLL_S)
                continue
            self._produced.clear()
            with contextlib.suppress(TimeoutError):  # idle: wake on the next publish, or
                await asyncio.wait_for(self._produced.wait(), _IDLE_POLL_S)  # for client errors

    def _on_client_error(self, error: KafkaError) -> None:
        if is_fatal(error):  # e.g. an idempotent producer that lost its sequence
            self._fatal = error
        # librdkafka repeats these on every reconnect
        if self._client_errors.first_in_window(error):
            log.warning("Kafka client error", extra={"fields": {"error": describe(error)}})

    def publish(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, str | bytes | None]],
        on_done: Callable[[KafkaError | None, Message], None],
    ) -> None:
        """Queue one message; ``on_done(error, message)`` runs on the event loop once Kafka
        confirmed (error None) or gave up. A callback, not a future: cheaper per message.

        Raises QueueFull at once when the local queue is full, or DeliveryFailed for errors
        librdkafka reports synchronously (unknown topic in its cache, message too large).
        """
        loop_thread = self._loop_thread

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if threading.get_ident() == loop_thread:
                on_done(error, message)
            else:  # served by close()'s flush on a worker thread
                self._loop.call_soon_threadsafe(on_done, error, message)

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
        self._produced.set()

    async def close(self, timeout_s: float) -> int:
        """Flush what is queued (bounded by ``timeout_s``), stop polling; returns undelivered."""
        # A flag as well as cancel(): Python 3.11's wait_for swallows a cancel that lands just
        # as the awaited event is set, and the poller would then run (and close() wait) for ever.
        self._closing = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        return int(await asyncio.to_thread(self._producer.flush, max(timeout_s, 0.0)))
