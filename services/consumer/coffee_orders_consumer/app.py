"""Run the consumer daemon: the consume thread, the status gRPC server, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee.orders.v1 import consumer_status_pb2_grpc
from coffee_orders_common.grpc_server import (
    OnReady,
    create_server,
    drain,
    serve_until_stopped,
)
from coffee_orders_common.kafka_config import admin_config, consumer_config, producer_config
from coffee_orders_common.kafka_health import KafkaReachability, KafkaWatch
from coffee_orders_common.liveness import Watchdog
from coffee_orders_common.logs import redact
from coffee_orders_common.metrics import start_metrics_endpoint

from .consume_loop import ConsumeLoop
from .dead_letter import DeadLetters
from .dedup import ProcessedOrders
from .metrics import ConsumerMetrics
from .settings import ConsumerSettings
from .status import ConsumerStatus
from .status_servicer import StatusServicer
from .topic_limits import consumer_fetch_config, dead_letter_producer_config, read_topic_limits

log = logging.getLogger("coffee_orders.consumer")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ConsumerStatusService"].full_name
LIMITS_TIMEOUT_S = 5.0  # reading the topics' max.message.bytes at start; then Kafka's default


async def serve(
    settings: ConsumerSettings,
    stop: asyncio.Event | None = None,
    on_ready: OnReady | None = None,
    metrics: ConsumerMetrics | None = None,
) -> None:
    """Consume and serve status until ``stop`` is set (or SIGTERM/SIGINT when it is None);
    ``metrics`` are this instance's (new ones when None)."""
    metrics = metrics or ConsumerMetrics()
    kafka = settings.kafka
    dead_letter_topic = kafka.dead_letter_topic_name
    limits = await asyncio.to_thread(
        read_topic_limits, admin_config(kafka), [kafka.topic, dead_letter_topic], LIMITS_TIMEOUT_S
    )
    source_limit = limits[kafka.topic].max_message_bytes
    dead_letter_limit = limits[dead_letter_topic].max_message_bytes
    config = {**consumer_config(kafka), **consumer_fetch_config(source_limit, kafka.properties)}
    log.info(
        "starting consumer",
        extra={
            "fields": {
                "group": kafka.group_id,
                "topic": kafka.topic,
                "dead_letter_topic": dead_letter_topic,
                "topic_max_message_bytes": source_limit,
                "dead_letter_max_message_bytes": dead_letter_limit,
                "kafka": redact(config),
            }
        },
    )
    metrics_endpoint = await start_metrics_endpoint(
        settings.metrics_listen, metrics.registry, settings.limits
    )
    status = ConsumerStatus(
        kafka.group_id, kafka.topic, dead_letter_topic, settings.recent_errors, metrics
    )
    loop = ConsumeLoop(
        config,
        kafka.topic,
        status,
        ProcessedOrders(
            settings.state_dir,
            kafka.group_id,
            kafka.topic,
            settings.dedup_window,
            lambda partition, text: status.error(
                pb.ERROR_KIND_STATE_FILE, text, kafka.topic, partition
            ),
        ),
        DeadLetters(
            {
                **producer_config(kafka, "coffee-orders-dead-letters"),
                **dead_letter_producer_config(dead_letter_limit, kafka.properties),
            },
            dead_letter_topic,
            dead_letter_limit,
            kafka.delivery_timeout_ms / 1000,
            settings.dead_letter_retry_s,
        ),
    )

    def register(server: grpc.aio.Server) -> None:
        consumer_status_pb2_grpc.add_ConsumerStatusServiceServicer_to_server(
            StatusServicer(status, settings.watch_queue, settings.max_watchers), server
        )

    server, port, serving = await create_server(
        settings.listen, register, [SERVICE_NAME], settings.tls, settings.limits
    )

    async def on_kafka_change(state: KafkaReachability, detail: str) -> None:
        fields = {"fields": {"kafka": state.value, "detail": detail, "topic": kafka.topic}}
        if state is KafkaReachability.REACHABLE:
            log.info("Kafka reachable; health SERVING", extra=fields)
            status.kafka_back()
        else:
            log.warning(f"{detail}; health NOT_SERVING", extra=fields)
            status.error(pb.ERROR_KIND_KAFKA, detail, topic=kafka.topic)
            status.set_state(pb.CONSUMER_STATE_DEGRADED)
        await serving.set(state is KafkaReachability.REACHABLE)

    watch = KafkaWatch(admin_config(kafka), kafka.topic, on_kafka_change)
    watch.start()
    loop.start()
    watchdog = Watchdog(
        settings.worker_stall_timeout_s, settings.grace_period_s, serving, log, status.failed
    )
    watchdog.watch_thread("consume loop", loop.thread, loop.heartbeat)
    watchdog.watch_task("Kafka watch", watch.task, watch.heartbeat)

    async def shut_down() -> None:
        started = time.monotonic()
        log.info("stopping: committing processed offsets and leaving the group")
        status.stopping()
        await serving.shutting_down()
        await watch.stop()
        left_cleanly = await asyncio.to_thread(loop.stop, settings.grace_period_s)
        if not left_cleanly:
            log.warning("the consume loop did not finish within the grace period")
        remaining = max(settings.grace_period_s - (time.monotonic() - started), 0.5)
        await drain(server, serving, remaining)
        metrics_endpoint.close()
        snapshot = status.snapshot()
        log.info(
            "consumer stopped",
            extra={
                "fields": {
                    "processed": snapshot.counters.processed,
                    "duplicates_skipped": snapshot.counters.duplicates_skipped,
                    "errors": snapshot.counters.errors_total,
                    "dead_lettered": snapshot.counters.dead_lettered,
                    "seconds": round(time.monotonic() - started, 2),
                }
            },
        )

    await watchdog.guard(
        serve_until_stopped(
            "consumer status server", settings.listen, port, stop, on_ready, settings.tls
        ),
        shut_down,
    )
