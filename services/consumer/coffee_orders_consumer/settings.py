"""Consumer settings on top of the shared ones."""

from __future__ import annotations

from coffee_orders_common.settings import ServiceSettings, state_home
from pydantic import Field

CONSUMER_ENV = {
    "COFFEE_CONSUMER_LISTEN": "listen",
    "COFFEE_CONSUMER_STATE_DIR": "state_dir",
    "COFFEE_CONSUMER_DEDUP_WINDOW": "dedup_window",
    "COFFEE_CONSUMER_RECENT_ERRORS": "recent_errors",
    "COFFEE_CONSUMER_DEAD_LETTER_RETRY": "dead_letter_retry_s",
}


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
    # How long a dead-letter copy failing with retriable errors (Kafka unreachable, no leader) is
    # sent again before it is recorded as DEAD_LETTER_FAILED and its offset stored. The consume
    # loop waits meanwhile, so this stays well below max.poll.interval.ms (300 s).
    dead_letter_retry_s: float = Field(default=60.0, ge=0, le=240)
