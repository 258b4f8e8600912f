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
from coffee_orders_common.logs import redact
from coffee_orders_common.metrics import start_metrics_endpoint

from . import metrics
from .idempotency import RequestLedger
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
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None)."""
    kafka = settings.kafka
    config = producer_config(kafka)
    log.info(
        "starting producer",
        extra={"fields": {"topic": kafka.topic, "kafka": redact(config)}},
    )
    start_metrics_endpoint(settings.metrics_listen)
    publisher = Publisher(config)
    publisher.start()
    servicer = OrderServicer(
        publisher,
        kafka.topic,
        reachability=lambda: watch.state,
        max_in_flight=settings.max_in_flight,
        ledger=RequestLedger(settings.request_id_cache_size),
    )

    metrics.IN_FLIGHT.set_function(lambda: servicer.in_flight)

    def register(server: grpc.aio.Server) -> None:
        register_order_service(server, servicer)

    server, port, serving = await create_server(
        settings.listen, register, [SERVICE_NAME], settings.tls
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
    try:
        await serve_until_stopped("producer", settings.listen, port, stop, on_ready, settings.tls)
    finally:
        await _shut_down(settings, server, serving, servicer, watch, publisher)


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
    await drain(server, serving, grace)
    await watch.stop()
    left = max(grace - (time.monotonic() - started), 0.5)
    undelivered = await publisher.close(left)
    log.info(
        "producer stopped",
        extra={
            "fields": {
                "undelivered": undelivered,
                "outcomes": dict(servicer.outcomes),
                "seconds": round(time.monotonic() - started, 2),
            }
        },
    )
