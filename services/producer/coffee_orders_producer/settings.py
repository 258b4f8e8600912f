"""Producer settings on top of the shared ones."""

from __future__ import annotations

from typing import ClassVar

from coffee_orders_common.settings import ServiceSettings, setting
from pydantic import model_validator


class ProducerSettings(ServiceSettings):
    config_section: ClassVar[str] = "producer"

    listen: str = setting(
        "0.0.0.0:50051", env="COFFEE_PRODUCER_LISTEN", flag="--listen", help="gRPC HOST:PORT"
    )
    max_in_flight: int = setting(
        10_000,
        env="COFFEE_PRODUCER_MAX_IN_FLIGHT",
        help="orders waiting for Kafka at once; more get RESOURCE_EXHAUSTED, not a queue",
        ge=1,
        le=1_000_000,
    )
    request_id_cache_size: int = setting(
        100_000,
        env="COFFEE_PRODUCER_REQUEST_ID_CACHE",
        help="confirmed request_ids remembered to answer repeats without publishing",
        ge=0,
        le=10_000_000,
    )
    stream_unanswered: int = setting(
        2_000,
        env="COFFEE_PRODUCER_STREAM_UNANSWERED",
        help="orders one PlaceOrders stream may hold unanswered (at least one full batch); "
        "beyond it the stream stops reading",
        ge=1_000,
        le=1_000_000,
    )
    streams_unanswered: int = setting(
        20_000,
        env="COFFEE_PRODUCER_STREAMS_UNANSWERED",
        help="orders all PlaceOrders streams together may hold unanswered",
        ge=1_000,
        le=10_000_000,
    )

    @model_validator(mode="after")
    def _streams_hold_a_stream(self) -> ProducerSettings:
        if self.streams_unanswered < self.stream_unanswered:
            raise ValueError("streams_unanswered must be at least stream_unanswered")
        return self
