"""Consumer settings on top of the shared ones."""

from __future__ import annotations

from typing import ClassVar

from coffee_orders_common.kafka_settings import KafkaSettings
from coffee_orders_common.setting_fields import setting
from coffee_orders_common.settings import ServiceSettings
from pydantic import ValidationInfo, field_validator

# A dead-letter copy waits up to the delivery timeout plus a second, then backs off up to 5 s
# before the next attempt: the consume loop's heartbeat may be that late, plus a margin.
DEAD_LETTER_WAIT_MARGIN_S = 10.0


# librdkafka properties whose value here would undo at-least-once: the value, and why.
_AT_LEAST_ONCE_BREAKERS = {
    "enable.auto.offset.store": (
        "true",
        "would store offsets before the orders are processed (a crash would skip them)",
    ),
    "enable.auto.commit": (
        "false",
        "would never commit the offsets stored after processing (every restart would read the "
        "topic again)",
    ),
}


class ConsumerSettings(ServiceSettings):
    config_section: ClassVar[str] = "consumer"

    listen: str = setting(
        "0.0.0.0:50052", env="COFFEE_CONSUMER_LISTEN", flag="--listen", help="gRPC HOST:PORT"
    )
    recent_errors: int = setting(
        100,
        env="COFFEE_CONSUMER_RECENT_ERRORS",
        help="recent errors GetStatus returns",
        ge=1,
        le=10_000,
    )
    watch_queue: int = setting(
        1_000,
        env="COFFEE_CONSUMER_WATCH_QUEUE",
        help="errors kept for each slow WatchErrors stream; beyond it the oldest are dropped "
        "and the stream is told how many",
        ge=1,
        le=1_000_000,
    )
    max_watchers: int = setting(
        100,
        env="COFFEE_CONSUMER_MAX_WATCHERS",
        help="WatchErrors streams open at once; more get RESOURCE_EXHAUSTED",
        ge=1,
        le=100_000,
    )
    dead_letter_retry_s: float = setting(
        60.0,
        env="COFFEE_CONSUMER_DEAD_LETTER_RETRY",
        help="seconds a dead-letter copy failing with retriable errors is sent again before it is "
        "recorded as DEAD_LETTER_FAILED (the loop waits meanwhile: keep it below 300)",
        ge=0,
        le=240,
    )

    batch_max: int = setting(
        5000,
        env="COFFEE_CONSUMER_BATCH_MAX",
        help="messages handled together at most (of those already fetched): one log write and "
        "one order-state transaction each; a crashed consumer's successor logs at most one "
        "batch again",
        ge=1,
        le=100_000,
    )

    group_timeout_s: float = setting(
        60.0,
        env="COFFEE_CONSUMER_GROUP_TIMEOUT",
        help="seconds the consumer may be out of its group (should hold partitions and does "
        "not) or have a partition with lag that does not advance, before it rejoins with a new "
        "Kafka consumer; as long again after that and it exits with code 70",
        ge=5,
        le=3600,
    )

    @field_validator("kafka")
    @classmethod
    def _keeps_at_least_once(cls, kafka: KafkaSettings) -> KafkaSettings:
        for key, breaking in _AT_LEAST_ONCE_BREAKERS.items():
            value = kafka.properties.get(key)
            if value is not None and value.strip().lower() == breaking[0]:
                raise ValueError(f"kafka.properties {key}={value} {breaking[1]}; leave it unset")
        return kafka

    @field_validator("worker_stall_timeout_s")
    @classmethod
    def _longer_than_a_dead_letter_wait(cls, value: float, info: ValidationInfo) -> float:
        kafka = info.data.get("kafka")
        if isinstance(kafka, KafkaSettings):
            slowest = kafka.delivery_timeout_ms / 1000 + DEAD_LETTER_WAIT_MARGIN_S
            if value < slowest:
                raise ValueError(
                    f"must be at least kafka.delivery_timeout_ms + {DEAD_LETTER_WAIT_MARGIN_S:g} s "
                    f"({slowest:g} s): a dead-letter copy may take that long; got {value:g}"
                )
        return value
