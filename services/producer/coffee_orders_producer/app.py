"""Run the producer: settings, Kafka, gRPC server, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from coffee.orders.v1 import orders_pb2
from coffee_orders_common.bootstrap import Bootstrap
from coffee_orders_common.grpc_server import OnReady, drain
from coffee_orders_common.kafka_config import producer_config
from coffee_orders_common.kafka_health import KafkaReachability
from coffee_orders_common.liveness import Watchdog
from coffee_orders_common.logs import redact
from coffee_orders_common.order_tracking import SERVICE_NAME as TRACKING_SERVICE_NAME
from coffee_orders_common.order_tracking import (
    OrderTracker,
    OrderTrackingServicer,
    add_tracking_service,
    tracker_for,
)

from .idempotency import RequestLedger
from .metrics import ProducerMetrics
from .order_stream import StreamBudget
from .publisher import Publisher
from .registration import register_order_service
from .servicer import OrderServicer
from .settings import ProducerSettings

log = logging.getLogger("coffee_orders.producer")
SERVICE_NAME = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
_FIRST_CHECK_S = 6.0


async def serve(
    settings: ProducerSettings,
    stop: asyncio.Event | None = None,
    on_ready: OnReady | None = None,
    metrics: ProducerMetrics | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None); ``metrics`` are
    this instance's (new ones when None)."""
    kafka = settings.kafka
    config = producer_config(kafka)
    log.info(
        "starting producer",
        extra={"fields": {"topic": kafka.topic, "kafka": redact(config)}},
    )
    await _Producer(settings, config, metrics or ProducerMetrics()).run(stop, on_ready)


class _Producer(Bootstrap[ProducerSettings]):
    server_label = "producer"
    health_name = SERVICE_NAME

    def __init__(
        self, settings: ProducerSettings, config: dict[str, str], metrics: ProducerMetrics
    ):
        super().__init__(settings, metrics.registry, log)
        self._config = config
        self._metrics = metrics

    def build(self) -> None:
        settings = self.settings
        self._publisher = publisher = Publisher(self._config)
        publisher.start()
        self._tracker: OrderTracker | None = None
        if settings.order_state.enabled:
            self.extra_service_names = (TRACKING_SERVICE_NAME,)
            self._tracker = tracker_for(settings, "coffee-orders-producer-order-state")
        self._servicer = servicer = OrderServicer(
            publisher,
            settings.kafka.topic,
            reachability=lambda: self.watch.state,
            max_in_flight=settings.max_in_flight,
            ledger=RequestLedger(settings.request_id_cache_size),
            metrics=self._metrics,
            tracker=self._tracker,
        )
        self._budget = budget = StreamBudget(
            settings.stream_unanswered, settings.streams_unanswered
        )
        self._metrics.read_from(
            in_flight=lambda: servicer.in_flight,
            stream_unanswered=lambda: budget.shared.taken,
            kafka_queue=lambda: publisher.queued,
        )

    def register(self, server: grpc.aio.Server) -> None:
        register_order_service(server, self._servicer, self._budget)
        if self._tracker is not None:
            add_tracking_service(OrderTrackingServicer(self._tracker), server)

    def kafka_changed(self, state: KafkaReachability, detail: str) -> None:
        topic = self.settings.kafka.topic
        fields = {"fields": {"kafka": state.value, "detail": detail, "topic": topic}}
        if state is KafkaReachability.REACHABLE:
            log.info("Kafka reachable; health SERVING", extra=fields)
        elif state is KafkaReachability.TOPIC_MISSING:
            log.warning(
                f"topic {topic} does not exist: PlaceOrder answers FAILED_PRECONDITION "
                "until it is created; health NOT_SERVING",
                extra=fields,
            )
        elif state is KafkaReachability.AUTH_FAILED:
            log.error(
                f"{detail}; PlaceOrder answers PERMISSION_DENIED; health NOT_SERVING", extra=fields
            )
        elif state is KafkaReachability.BROKER_UNTRUSTED:
            log.error(f"{detail}; PlaceOrder answers UNAVAILABLE; health NOT_SERVING", extra=fields)
        else:
            log.warning("Kafka unreachable; health NOT_SERVING", extra=fields)

    async def started(self) -> None:
        if self._tracker is not None:
            self._tracker.view.start()  # restores in the background; tracking waits for it
        await self.watch.first_result(_FIRST_CHECK_S)

    def watch_workers(self, watchdog: Watchdog) -> None:
        watchdog.watch_task(
            "delivery-report poller", self._publisher.poller, self._publisher.heartbeat
        )
        if self._tracker is not None:
            view = self._tracker.view
            watchdog.watch_thread("order-state view", view.thread, view.heartbeat)

    async def shut_down(self) -> None:
        started = time.monotonic()
        grace = self.settings.grace_period_s
        log.info("stopping: health NOT_SERVING, finishing in-flight calls")
        self._servicer.closing = True
        # Flush while in-flight calls finish: their delivery reports are served by the flush
        # even when the poller has died (a worker failure).
        _, undelivered = await asyncio.gather(
            drain(self.server, self.serving, grace), self._publisher.close(grace)
        )
        await self.watch.stop()
        if self._tracker is not None:
            await asyncio.to_thread(self._tracker.view.stop)
        log.info(
            "producer stopped",
            extra={
                "fields": {
                    "undelivered": undelivered,
                    "outcomes": self._metrics.outcomes(),
                    "seconds": round(time.monotonic() - started, 2),
                }
            },
        )
