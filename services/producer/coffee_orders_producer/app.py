"""Run the producer: settings, Kafka, gRPC server, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from coffee.orders.v1 import orders_pb2
from coffee_orders_common.grpc_server import (
    OnReady,
    ServingState,
    create_server,
    drain,
    serve_until_stopped,
)
from coffee_orders_common.kafka_config import admin_config, producer_config
from coffee_orders_common.kafka_health import KafkaReachability, KafkaWatch
from coffee_orders_common.liveness import Watchdog
from coffee_orders_common.logs import redact
from coffee_orders_common.metrics import start_metrics_endpoint

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
    metrics = metrics or ProducerMetrics()
    kafka = settings.kafka
    config = producer_config(kafka)
    log.info(
        "starting producer",
        extra={"fields": {"topic": kafka.topic, "kafka": redact(config)}},
    )
    metrics_endpoint = await start_metrics_endpoint(
        settings.metrics_listen, metrics.registry, settings.limits
    )
    publisher = Publisher(config)
    publisher.start()
    servicer = OrderServicer(
        publisher,
        kafka.topic,
        reachability=lambda: watch.state,
        max_in_flight=settings.max_in_flight,
        ledger=RequestLedger(settings.request_id_cache_size),
        metrics=metrics,
    )
    budget = StreamBudget(settings.stream_unanswered, settings.streams_unanswered)
    metrics.read_from(
        in_flight=lambda: servicer.in_flight,
        stream_unanswered=lambda: budget.shared.taken,
        kafka_queue=lambda: publisher.queued,
    )

    def register(server: grpc.aio.Server) -> None:
        register_order_service(server, servicer, budget)

    server, port, serving = await create_server(
        settings.listen, register, [SERVICE_NAME], settings.tls, settings.limits
    )

    async def on_kafka_change(state: KafkaReachability, detail: str) -> None:
        fields = {"fields": {"kafka": state.value, "detail": detail, "topic": kafka.topic}}
        if state is KafkaReachability.REACHABLE:
            log.info("Kafka reachable; health SERVING", extra=fields)
        elif state is KafkaReachability.TOPIC_MISSING:
            log.warning(
                f"topic {kafka.topic} does not exist: PlaceOrder answers FAILED_PRECONDITION "
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
        await serving.set(state is KafkaReachability.REACHABLE)

    watch = KafkaWatch(admin_config(kafka), kafka.topic, on_kafka_change)
    watch.start()
    await watch.first_result(_FIRST_CHECK_S)
    watchdog = Watchdog(settings.worker_stall_timeout_s, settings.grace_period_s, serving, log)
    watchdog.watch_task("delivery-report poller", publisher.poller, publisher.heartbeat)
    watchdog.watch_task("Kafka watch", watch.task, watch.heartbeat)

    async def shut_down() -> None:
        try:
            await _shut_down(settings, server, serving, servicer, watch, publisher)
        finally:
            metrics_endpoint.close()

    await watchdog.guard(
        serve_until_stopped("producer", settings.listen, port, stop, on_ready, settings.tls),
        shut_down,
    )


async def _shut_down(
    settings: ProducerSettings,
    server: grpc.aio.Server,
    serving: ServingState,
    servicer: OrderServicer,
    watch: KafkaWatch,
    publisher: Publisher,
) -> None:
    started = time.monotonic()
    grace = settings.grace_period_s
    log.info("stopping: health NOT_SERVING, finishing in-flight calls")
    servicer.closing = True
    # Flush while in-flight calls finish: their delivery reports are served by the flush even
    # when the poller has died (a worker failure).
    _, undelivered = await asyncio.gather(drain(server, serving, grace), publisher.close(grace))
    await watch.stop()
    log.info(
        "producer stopped",
        extra={
            "fields": {
                "undelivered": undelivered,
                "outcomes": servicer.metrics.outcomes(),
                "seconds": round(time.monotonic() - started, 2),
            }
        },
    )
