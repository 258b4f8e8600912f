"""The start-up and shutdown skeleton both services share; each service says what differs.

``Bootstrap.run`` does, in this order:

1. start the service's /metrics endpoint (its own registry);
2. ``build()``: the service's own parts (publisher and servicer, or status and consume loop);
3. the gRPC server, with health checking for ``health_name`` (``register`` adds the service);
4. the Kafka watch: each change is ``kafka_changed(state, detail)`` (the service logs it and
   does what it means for it), then health follows reachability (SERVING when reachable);
5. ``started()``: what the service does once the watch runs (wait for its first result, or
   start the consume thread);
6. the ``Watchdog``: the service's workers (``watch_workers``), then the Kafka watch;
7. serve until stopped or a worker fails, then ``shut_down()``; the /metrics endpoint is
   closed after it in any case.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Generic, TypeVar

import grpc
from prometheus_client import CollectorRegistry

from .grpc_server import OnReady, ServingState, create_server, serve_until_stopped
from .kafka_config import admin_config
from .kafka_health import KafkaReachability, KafkaWatch
from .liveness import Watchdog
from .metrics import MetricsEndpoint, start_metrics_endpoint
from .settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


class Bootstrap(abc.ABC, Generic[SettingsT]):
    """One run of a service; see the module docstring. ``server``, ``serving``, ``watch`` and
    ``metrics_endpoint`` exist from the step that creates them on."""

    server_label: str  # how serve_until_stopped names the server: "producer", ...
    health_name: str  # the gRPC service whose health follows Kafka's reachability
    # Further services ``register`` adds (order tracking), for reflection and health alike.
    extra_service_names: tuple[str, ...] = ()

    server: grpc.aio.Server
    serving: ServingState
    watch: KafkaWatch
    metrics_endpoint: MetricsEndpoint

    def __init__(self, settings: SettingsT, registry: CollectorRegistry, log: logging.Logger):
        self.settings = settings
        self.log = log
        self._registry = registry

    @abc.abstractmethod
    def build(self) -> None:
        """Create (and start, where they run on their own) the service's parts."""

    @abc.abstractmethod
    def register(self, server: grpc.aio.Server) -> None:
        """Add the service's servicer to ``server``."""

    @abc.abstractmethod
    def kafka_changed(self, state: KafkaReachability, detail: str) -> None:
        """Log a change of Kafka's reachability and do what it means for the service."""

    @abc.abstractmethod
    async def started(self) -> None:
        """Runs once the Kafka watch has started, before the watchdog does."""

    @abc.abstractmethod
    def watch_workers(self, watchdog: Watchdog) -> None:
        """Hand the service's own workers to the watchdog (the Kafka watch is added after)."""

    @abc.abstractmethod
    async def shut_down(self) -> None:
        """The service's graceful shutdown (the /metrics endpoint closes after it)."""

    def failed(self, reason: str) -> None:
        """A worker failed (before health turns NOT_SERVING); nothing more by default."""

    async def run(self, stop: asyncio.Event | None, on_ready: OnReady | None) -> None:
        """Serve until ``stop`` is set (or SIGTERM/SIGINT when it is None), then shut down."""
        settings = self.settings
        self.metrics_endpoint = await start_metrics_endpoint(
            settings.metrics_listen, self._registry, settings.limits
        )
        self.build()
        self.server, port, self.serving = await create_server(
            settings.listen,
            self.register,
            [self.health_name, *self.extra_service_names],
            settings.tls,
            settings.limits,
        )
        kafka = settings.kafka
        self.watch = KafkaWatch(admin_config(kafka), kafka.topic, self._kafka_changed)
        self.watch.start()
        await self.started()
        watchdog = Watchdog(
            settings.worker_stall_timeout_s,
            settings.grace_period_s,
            self.serving,
            self.log,
            self.failed,
        )
        self.watch_workers(watchdog)
        watchdog.watch_task("Kafka watch", self.watch.task, self.watch.heartbeat)
        await watchdog.guard(
            serve_until_stopped(
                self.server_label, settings.listen, port, stop, on_ready, settings.tls
            ),
            self._shut_down,
        )

    async def _kafka_changed(self, state: KafkaReachability, detail: str) -> None:
        self.kafka_changed(state, detail)
        await self.serving.set(state is KafkaReachability.REACHABLE)

    async def _shut_down(self) -> None:
        try:
            await self.shut_down()
        finally:
            self.metrics_endpoint.close()
