"""Run the producer: settings, Kafka, gRPC server, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time

import grpc
from coffee_orders_common.grpc_server import (
    OnReady,
    create_server,
    drain,
    serve_until_stopped,
)
from coffee_orders_common.kafka_config import admin_config, producer_config
from coffee_orders_common.kafka_health import KafkaReachability, KafkaWatch, health_follows
from coffee_orders_common.liveness import Watchdog
from coffee_orders_common.logs import redact
from coffee_orders_common.metrics import start_metrics_endpoint
from coffee_orders_common.order_tracking import SERVICE_NAME as TRACKING_SERVICE_NAME
from coffee_orders_common.order_tracking import (
    OrderTrackingServicer,
    add_tracking_service,
    tracker_for,
)

from . import status_mapping
from .idempotency import RequestLedger
from .metrics import ProducerMetrics
from .order_stream import StreamBudget
from .publisher import Publisher
from .servicer import SERVICE_NAME, OrderServicer, add_order_service
from .settings import ProducerSettings

log = logging.getLogger("coffee_orders.producer")
_FIRST_CHECK_S = 6.0


async def serve(
    settings: ProducerSettings,
    stop: asyncio.Event | None = None,
    on_ready: OnReady | None = None,
    metrics: ProducerMetrics | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None); ``metrics`` are
    this instance's (new ones when None). Start-up and shutdown read top to bottom."""
    metrics = metrics or ProducerMetrics()
    kafka = settings.kafka
    config = producer_config(kafka)
    log.info(
        "starting producer",
        extra={"fields": {"topic": kafka.topic, "kafka": redact(config)}},
    )
    async with contextlib.AsyncExitStack() as stack:
        endpoint = await start_metrics_endpoint(
            settings.metrics_listen, metrics.registry, settings.limits
        )
        stack.callback(endpoint.close)  # the last thing closed
        publisher = Publisher(config)
        publisher.start()
        tracker = None
        if settings.order_state.enabled:
            tracker = tracker_for(settings, "coffee-orders-producer-order-state")
        # Its state is UNKNOWN until the first check: PlaceOrder answers UNAVAILABLE until then.
        watch = KafkaWatch(admin_config(kafka), kafka.topic)
        budget = StreamBudget(settings.stream_unanswered, settings.streams_unanswered)
        servicer = OrderServicer(
            publisher,
            kafka.topic,
            reachability=lambda: watch.state,
            max_in_flight=settings.max_in_flight,
            ledger=RequestLedger(settings.request_id_cache_size),
            metrics=metrics,
            tracker=tracker,
            stream_budget=budget,
        )
        metrics.read_from(
            in_flight=lambda: servicer.in_flight.taken,
            stream_unanswered=lambda: budget.shared.taken,
            kafka_queue=lambda: publisher.queued,
        )

        def register(server: grpc.aio.Server) -> None:
            add_order_service(server, servicer)
            if tracker is not None:
                add_tracking_service(OrderTrackingServicer(tracker), server)

        names = [SERVICE_NAME] + ([TRACKING_SERVICE_NAME] if tracker is not None else [])
        server, port, serving = await create_server(
            settings.listen, register, names, settings.tls, settings.limits
        )
        # Each worker is watched from its start; the watchdog looks once serving begins.
        watchdog = Watchdog(settings.worker_stall_timeout_s, settings.grace_period_s, serving, log)
        watchdog.watch_task("delivery-report poller", publisher.poller, publisher.heartbeat)
        watch.start(health_follows(serving, functools.partial(_say, kafka.topic)))
        watchdog.watch_task("Kafka watch", watch.task, watch.heartbeat)
        if tracker is not None:
            tracker.view.start()  # restores in the background; tracking waits for it
            watchdog.watch_thread("order-state view", tracker.view.thread, tracker.view.heartbeat)
        await watch.first_result(_FIRST_CHECK_S)
        try:
            await watchdog.serve(
                serve_until_stopped("producer", settings.listen, port, stop, on_ready, settings.tls)
            )
        finally:  # stopped, or a worker failed: the graceful shutdown
            async with watchdog.shutting_down():
                started = time.monotonic()
                grace = settings.grace_period_s
                log.info("stopping: health NOT_SERVING, finishing in-flight calls")
                servicer.closing = True
                # Flush while in-flight calls finish: their delivery reports are served by the
                # flush even when the poller has died (a worker failure).
                _, undelivered = await asyncio.gather(
                    drain(server, serving, grace), publisher.close(grace)
                )
                await watch.stop()
                if tracker is not None:
                    await asyncio.to_thread(tracker.view.stop)
                log.info(
                    "producer stopped",
                    extra={
                        "fields": {
                            "undelivered": undelivered,
                            "outcomes": metrics.outcomes(),
                            "seconds": round(time.monotonic() - started, 2),
                        }
                    },
                )


def _say(topic: str, state: KafkaReachability, detail: str) -> None:
    """Log a change of Kafka's reachability, and what PlaceOrder answers now."""
    fields = {"fields": {"kafka": state.value, "detail": detail, "topic": topic}}
    failure = status_mapping.for_reachability(state, topic)
    if failure is None:
        log.info("Kafka reachable; health SERVING", extra=fields)
    elif state is KafkaReachability.TOPIC_MISSING:
        log.warning(
            f"topic {topic} does not exist: PlaceOrder answers {failure.code.name} "
            "until it is created; health NOT_SERVING",
            extra=fields,
        )
    elif state in (KafkaReachability.AUTH_FAILED, KafkaReachability.BROKER_UNTRUSTED):
        text = f"{detail}; PlaceOrder answers {failure.code.name}; health NOT_SERVING"
        log.error(text, extra=fields)
    else:
        log.warning("Kafka unreachable; health NOT_SERVING", extra=fields)
