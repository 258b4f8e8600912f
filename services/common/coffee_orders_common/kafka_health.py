"""Watch whether Kafka is reachable and the topic exists, and say so to a callback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from .liveness import Heartbeat

log = logging.getLogger(__name__)
# Kafka refusing our credentials or permissions (also the producer's PERMISSION_DENIED row).
AUTH_ERRORS = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}


class KafkaReachability(Enum):
    UNKNOWN = "unknown"
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    TOPIC_MISSING = "topic_missing"
    AUTH_FAILED = "auth_failed"


class KafkaWatch:
    """Checks cluster metadata every ``interval_s`` in a worker thread, never on the event loop.

    ``on_change`` is awaited on the event loop whenever the reachability changes.
    """

    def __init__(
        self,
        admin_config: dict[str, Any],
        topic: str,
        on_change: Callable[[KafkaReachability, str], Awaitable[None]],
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
    ):
        config: dict[str, Any] = {
            **admin_config,
            "logger": logging.getLogger("librdkafka"),
            "error_cb": self._on_error,
        }
        self._admin = AdminClient(config)
        self._auth_error: str | None = None
        self._topic = topic
        self._on_change = on_change
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self.state = KafkaReachability.UNKNOWN
        self.detail = "not checked yet"
        self._checked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.heartbeat = Heartbeat()  # before and after each check (a check may take timeout_s)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in AUTH_ERRORS:
            self._auth_error = error.str()

    def _probe(self) -> tuple[KafkaReachability, str]:
        self._auth_error = None
        try:
            metadata = self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            self._admin.poll(0)  # serve error callbacks: an authentication failure shows here
            if self._auth_error is not None:
                return (
                    KafkaReachability.AUTH_FAILED,
                    f"Kafka refused the credentials: {self._auth_error}",
                )
            return KafkaReachability.UNREACHABLE, f"cannot reach Kafka: {exc.args[0].str()}"
        if not metadata.brokers:
            return KafkaReachability.UNREACHABLE, "no broker answered"
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            return KafkaReachability.TOPIC_MISSING, f"topic {self._topic} does not exist"
        return KafkaReachability.REACHABLE, f"{len(metadata.brokers)} broker(s) reachable"

    async def check_now(self) -> KafkaReachability:
        state, detail = await asyncio.to_thread(self._probe)
        self.detail = detail
        if state != self.state:
            self.state = state
            await self._on_change(state, detail)
        self._checked.set()
        return state

    async def _run(self) -> None:
        while True:
            self.heartbeat.beat()
            try:
                await self.check_now()
            except Exception:  # a bug here must not stop the watch
                log.exception("Kafka health check failed")
            self.heartbeat.beat()
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-watch")

    @property
    def task(self) -> asyncio.Task[None]:
        """The watch itself, once started (for the watchdog)."""
        assert self._task is not None, "start() first"
        return self._task

    async def first_result(self, timeout_s: float) -> KafkaReachability:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._checked.wait(), timeout_s)
        return self.state

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
