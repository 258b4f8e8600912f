"""A stand-in for the producer's Kafka ``Publisher`` with the real one's surface (start, publish,
queued, poller, heartbeat, close), for the servicer's and the stream's logic without a broker.

Each published message waits until the test settles it: ``deliver`` (Kafka confirmed it at the
given partition, its offset is its index in ``sent``) or ``fail`` (a delivery report with that
error). ``refuse`` makes ``publish`` raise at once, as librdkafka does for a full local queue or
an unknown topic. tests/unit/test_fake_publisher.py holds the surface against the real class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from coffee_orders_common.liveness import Heartbeat
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, Message

TIMESTAMP_MS = 1_765_000_000_042  # the create time of every delivered message
Headers = list[tuple[str, str | bytes | None]]
OnDone = Callable[[KafkaError | None, Message], None]


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    on_done: OnDone
    settled: bool = False


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.refuse: Exception | None = None  # raised by publish() while set
        self.most_in_flight = 0  # the most messages ever published and not yet settled
        self.heartbeat = Heartbeat()
        self._poller: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._more = asyncio.Event()

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_until_closed())

    async def _poll_until_closed(self) -> None:
        await self._closed.wait()

    @property
    def queued(self) -> int:
        return sum(not sent.settled for sent in self.sent)

    @property
    def poller(self) -> asyncio.Task[None]:
        assert self._poller is not None, "start() first"
        return self._poller

    def publish(
        self, topic: str, key: bytes, value: bytes, headers: Headers, on_done: OnDone
    ) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append(Sent(topic, key, value, headers, on_done))
        self.most_in_flight = max(self.most_in_flight, self.queued)
        self._more.set()

    async def close(self, timeout_s: float) -> int:
        self._closed.set()
        if self._poller is not None:
            await self._poller
        return self.queued

    async def published(self, count: int, within: float = 10.0) -> list[Sent]:
        """The first ``count`` messages, once that many were published (at most ``within`` s)."""
        try:
            async with asyncio.timeout(within):
                while len(self.sent) < count:
                    self._more.clear()
                    await self._more.wait()
        except TimeoutError:
            raise AssertionError(f"{len(self.sent)} of {count} messages published") from None
        return self.sent[:count]

    def deliver(self, index: int, partition: int = 0) -> None:
        """Kafka confirmed message ``index``; its offset is ``index``."""
        self._settle(index, None, partition, index)

    def fail(self, index: int, error: KafkaError) -> None:
        """Kafka gave up on message ``index`` with ``error``."""
        self._settle(index, error, -1, -1001)

    def _settle(self, index: int, error: KafkaError | None, partition: int, offset: int) -> None:
        sent = self.sent[index]
        assert not sent.settled, f"message {index} was settled already"
        sent.settled = True
        message = Message(
            topic=sent.topic,
            partition=partition,
            offset=offset,
            key=sent.key,
            value=sent.value,
            headers=sent.headers,
            timestamp=(TIMESTAMP_CREATE_TIME, TIMESTAMP_MS),
        )
        sent.on_done(error, message)
