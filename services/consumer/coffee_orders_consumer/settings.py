"""Consumer settings on top of the shared ones."""

from __future__ import annotations

from coffee_orders_common.settings import KafkaSettings, ServiceSettings, state_home
from pydantic import Field, ValidationInfo, field_validator

CONSUMER_ENV = {
    "COFFEE_CONSUMER_LISTEN": "listen",
    "COFFEE_CONSUMER_STATE_DIR": "state_dir",
    "COFFEE_CONSUMER_DEDUP_WINDOW": "dedup_window",
    "COFFEE_CONSUMER_RECENT_ERRORS": "recent_errors",
}


# A dead-letter copy waits up to the delivery timeout plus a second, then backs off up to 5 s
# before the next attempt: the consume loop's heartbeat may be that late, plus a margin.
DEAD_LETTER_WAIT_MARGIN_S = 10.0


def default_state_dir() -> str:
    return str(state_home() / "consumer")


class ConsumerSettings(ServiceSettings):
    listen: str = "0.0.0.0:50052"
    # Where the processed order_ids of each partition are kept, so duplicates are skipped even
    # after a crash and restart.
    state_dir: str = Field(default_factory=default_state_dir)
    # How many processed order_ids per partition are remembered.
    dedup_window: int = Field(default=100_000, ge=0, le=10_000_000)
    # How many recent errors GetStatus returns.
    recent_errors: int = Field(default=100, ge=1, le=10_000)

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
