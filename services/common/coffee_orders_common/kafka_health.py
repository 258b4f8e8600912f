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

from .grpc_server import ServingState
from .kafka_tls import tls_problem
from .liveness import Heartbeat

log = logging.getLogger(__name__)
# Kafka refusing our credentials or permissions (also the producer's PERMISSION_DENIED row).
AUTH_ERRORS = {
    KafkaError._AUTHENTICATION,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}
# A failed TLS handshake, or a broker's TLS alert on the first read after it.
TLS_ERRORS = {KafkaError._SSL, KafkaError._TRANSPORT}


class KafkaReachability(Enum):
    UNKNOWN = "unknown"
    REACHABLE = "reachable"
    UNREACHABLE = "unreachable"
    TOPIC_MISSING = "topic_missing"
    AUTH_FAILED = "auth_failed"  # Kafka refused our SASL credentials or TLS client certificate
    BROKER_UNTRUSTED = "broker_untrusted"  # the broker's TLS certificate does not verify


OnChange = Callable[[KafkaReachability, str], Awaitable[None]]


class KafkaWatch:
    """Checks cluster metadata every ``interval_s`` in a worker thread, never on the event loop.

    ``state`` is UNKNOWN until the first check; ``start(on_change)`` begins checking, and
    ``on_change`` is awaited on the event loop whenever the reachability changes.
    """

    def __init__(
        self,
        admin_config: dict[str, Any],
        topic: str,
        interval_s: float = 2.0,
        timeout_s: float = 5.0,
    ):
        config: dict[str, Any] = {
            **admin_config,
            "logger": logging.getLogger("librdkafka"),
            "error_cb": self._on_error,
        }
        self._admin = AdminClient(config)
        self._tls_config = {k: v for k, v in admin_config.items() if k.startswith("ssl.")}
        self._refusal: KafkaError | None = None
        self._topic = topic
        self._on_change: OnChange | None = None
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self.state = KafkaReachability.UNKNOWN
        self.detail = "not checked yet"
        self._checked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.heartbeat = Heartbeat()  # before and after each check (a check may take timeout_s)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in AUTH_ERRORS or error.code() in TLS_ERRORS:
            self._refusal = error

    def _probe(self) -> tuple[KafkaReachability, str]:
        self._refusal = None
        try:
            metadata = self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            self._admin.poll(0)  # serve error callbacks: a refused handshake shows here
            if self._refusal is not None:
                refused = self._refused(self._refusal)
                if refused is not None:
                    return refused
            return KafkaReachability.UNREACHABLE, f"cannot reach Kafka: {exc.args[0].str()}"
        if not metadata.brokers:
            return KafkaReachability.UNREACHABLE, "no broker answered"
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            return KafkaReachability.TOPIC_MISSING, f"topic {self._topic} does not exist"
        return KafkaReachability.REACHABLE, f"{len(metadata.brokers)} broker(s) reachable"

    def _refused(self, error: KafkaError) -> tuple[KafkaReachability, str] | None:
        problem = tls_problem(error, self._tls_config)
        if problem is not None:
            state = (
                KafkaReachability.BROKER_UNTRUSTED
                if problem.broker_untrusted
                else KafkaReachability.AUTH_FAILED
            )
            return state, problem.detail
        if error.code() in AUTH_ERRORS:
            return KafkaReachability.AUTH_FAILED, f"Kafka refused the credentials: {error.str()}"
        return None

    async def check_now(self) -> KafkaReachability:
        state, detail = await asyncio.to_thread(self._probe)
        self.detail = detail
        if state != self.state:
            self.state = state
            if self._on_change is not None:
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

    def start(self, on_change: OnChange) -> None:
        self._on_change = on_change
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


def health_follows(
    serving: ServingState, say: Callable[[KafkaReachability, str], None]
) -> OnChange:
    """A ``KafkaWatch`` callback: ``say`` the change (the service logs it and does what it means
    for it), then health follows reachability (SERVING while reachable)."""

    async def changed(state: KafkaReachability, detail: str) -> None:
        say(state, detail)
        await serving.set(state is KafkaReachability.REACHABLE)

    return changed
