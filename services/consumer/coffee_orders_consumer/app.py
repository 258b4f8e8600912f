"""Run the consumer daemon: the consume thread, the status gRPC server, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

import grpc
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee.orders.v1 import consumer_status_pb2_grpc
from coffee_orders_common.exit_codes import EXIT_BAD_SETTINGS
from coffee_orders_common.grpc_server import OnReady, create_server, drain, serve_until_stopped
from coffee_orders_common.kafka_config import admin_config, consumer_config, producer_config
from coffee_orders_common.kafka_health import KafkaReachability, KafkaWatch, health_follows
from coffee_orders_common.liveness import Watchdog
from coffee_orders_common.logs import redact
from coffee_orders_common.metrics import start_metrics_endpoint
from coffee_orders_common.order_state_topic import OrderStateTopicError, ensure_order_state_topic
from coffee_orders_common.order_tracking import (
    SERVICE_NAME as TRACKING_SERVICE_NAME,
)
from coffee_orders_common.order_tracking import (
    OrderTrackingServicer,
    add_tracking_service,
    tracker_for,
)
from coffee_orders_common.runner import ServiceExit

from .consume_loop import ConsumeLoop
from .dead_letter import DeadLetters
from .membership import GroupDescriber, GroupProbe
from .metrics import ConsumerMetrics
from .order_states import OrderStates
from .settings import ConsumerSettings
from .state_transactions import StateTransactions, state_producer_config
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
    kafka = settings.kafka
    dead_letter_topic = kafka.dead_letter_topic_name
    limits = await asyncio.to_thread(
        read_topic_limits, admin_config(kafka), [kafka.topic, dead_letter_topic], LIMITS_TIMEOUT_S
    )
    # Read here, before any record: a recreation seen later is then told from the start.
    topic_id = await asyncio.to_thread(
        GroupDescriber(admin_config(kafka), kafka.group_id, kafka.topic).topic_id
    )
    source_limit = limits[kafka.topic].max_message_bytes
    dead_letter_limit = limits[dead_letter_topic].max_message_bytes
    config = {**consumer_config(kafka), **consumer_fetch_config(source_limit, kafka.properties)}
    if settings.order_state.enabled:
        await _ensure_order_state_topic(settings)
        config["enable.auto.commit"] = "false"  # offsets are committed in the transactions
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
    metrics = metrics or ConsumerMetrics()
    async with contextlib.AsyncExitStack() as stack:
        endpoint = await start_metrics_endpoint(
            settings.metrics_listen, metrics.registry, settings.limits
        )
        stack.callback(endpoint.close)  # the last thing closed
        status = ConsumerStatus(
            kafka.group_id, kafka.topic, dead_letter_topic, settings.recent_errors, metrics
        )
        probe = GroupProbe(admin_config(kafka), kafka.group_id, kafka.topic)
        tracker = None
        states = None
        if settings.order_state.enabled:
            tracker = tracker_for(
                settings, "coffee-orders-consumer-order-state", _creator(settings)
            )
            states = OrderStates(tracker.view, _transactions(settings), settings.batch_max)
        consume = ConsumeLoop(
            config,
            kafka.topic,
            status,
            states,
            _dead_letters(settings, dead_letter_limit),
            probe,
            settings.group_timeout_s,
            settings.batch_max,
            topic_id,
        )

        def register(server: grpc.aio.Server) -> None:
            servicer = StatusServicer(status, settings.watch_queue, settings.max_watchers)
            consumer_status_pb2_grpc.add_ConsumerStatusServiceServicer_to_server(servicer, server)
            if tracker is not None:
                add_tracking_service(OrderTrackingServicer(tracker), server)

        names = [SERVICE_NAME] + ([TRACKING_SERVICE_NAME] if tracker is not None else [])
        server, port, serving = await create_server(
            settings.listen, register, names, settings.tls, settings.limits
        )
        # Each worker is watched from its start; the watchdog looks once serving begins.
        watchdog = Watchdog(
            settings.worker_stall_timeout_s, settings.grace_period_s, serving, log, status.failed
        )
        watch = KafkaWatch(admin_config(kafka), kafka.topic)
        watch.start(health_follows(serving, functools.partial(_say, status, kafka.topic)))
        watchdog.watch_task("Kafka watch", watch.task, watch.heartbeat)
        probe.start()
        watchdog.watch_thread("group probe", probe.thread, probe.heartbeat)
        if tracker is not None:
            tracker.view.start()
            watchdog.watch_thread("order-state view", tracker.view.thread, tracker.view.heartbeat)
        consume.start()
        watchdog.watch_thread("consume loop", consume.thread, consume.heartbeat)
        try:
            await watchdog.serve(
                serve_until_stopped(
                    "consumer status server", settings.listen, port, stop, on_ready, settings.tls
                )
            )
        finally:  # stopped, or a worker failed: the graceful shutdown
            async with watchdog.shutting_down():
                started = time.monotonic()
                grace = settings.grace_period_s
                log.info("stopping: committing processed offsets and leaving the group")
                status.stopping()
                await serving.shutting_down()
                await watch.stop()
                left_cleanly = await asyncio.to_thread(consume.stop, grace)
                if tracker is not None:
                    await asyncio.to_thread(tracker.view.stop)
                if not left_cleanly:
                    log.warning("the consume loop did not finish within the grace period")
                remaining = max(grace - (time.monotonic() - started), 0.5)
                await drain(server, serving, remaining)
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


def _transactions(settings: ConsumerSettings) -> StateTransactions:
    """The transactional producer of the order-state events and the consumed offsets."""
    kafka = settings.kafka
    return StateTransactions(
        state_producer_config(
            producer_config(kafka, "coffee-orders-consumer-order-state"), kafka.group_id
        ),
        kafka.order_state_topic_name,
        kafka.delivery_timeout_ms / 1000,
    )


def _dead_letters(settings: ConsumerSettings, dead_letter_limit: int) -> DeadLetters:
    kafka = settings.kafka
    return DeadLetters(
        {
            **producer_config(kafka, "coffee-orders-dead-letters"),
            **dead_letter_producer_config(dead_letter_limit, kafka.properties),
        },
        kafka.dead_letter_topic_name,
        dead_letter_limit,
        kafka.delivery_timeout_ms / 1000,
        settings.dead_letter_retry_s,
    )


def _say(status: ConsumerStatus, topic: str, state: KafkaReachability, detail: str) -> None:
    """Log a change of Kafka's reachability; GetStatus reports it too."""
    fields = {"fields": {"kafka": state.value, "detail": detail, "topic": topic}}
    if state is KafkaReachability.REACHABLE:
        log.info("Kafka reachable; health SERVING", extra=fields)
        status.kafka_back()
    else:
        log.warning(f"{detail}; health NOT_SERVING", extra=fields)
        status.error(pb.ERROR_KIND_KAFKA, detail, topic=topic)
        status.set_state(pb.CONSUMER_STATE_DEGRADED)


async def _ensure_order_state_topic(settings: ConsumerSettings) -> None:
    """Create the order-state topic when missing; refuse one that cannot serve (exit 2)."""
    kafka = settings.kafka
    name = kafka.order_state_topic_name
    try:
        created = await asyncio.to_thread(
            ensure_order_state_topic, admin_config(kafka), name, settings.order_state.window_s
        )
    except OrderStateTopicError as exc:
        if exc.unreachable:  # Kafka away at start: the view keeps looking, readiness says it
            log.warning(str(exc))
            return
        log.error(str(exc))
        raise ServiceExit(EXIT_BAD_SETTINGS) from None
    if created:
        log.info("created the order-state topic", extra={"fields": {"topic": name}})


def _creator(settings: ConsumerSettings) -> Callable[[], None]:
    """What the view calls while the order-state topic is missing (Kafka was away at start, or
    the topic was deleted): create it, saying each new reason it cannot be, once."""
    kafka = settings.kafka
    said = [""]

    def create() -> None:
        name = kafka.order_state_topic_name
        try:
            if ensure_order_state_topic(admin_config(kafka), name, settings.order_state.window_s):
                log.info("created the order-state topic", extra={"fields": {"topic": name}})
        except OrderStateTopicError as exc:
            if str(exc) != said[0]:
                said[0] = str(exc)
                log.warning(str(exc))

    return create
