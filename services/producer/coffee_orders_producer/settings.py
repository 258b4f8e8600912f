"""Producer settings on top of the shared ones."""

from __future__ import annotations

from typing import ClassVar

from coffee_orders_common.setting_fields import setting
from coffee_orders_common.settings import ServiceSettings
from pydantic import ValidationInfo, field_validator


class ProducerSettings(ServiceSettings):
    config_section: ClassVar[str] = "producer"

    listen: str = setting(
        "0.0.0.0:50051", env="COFFEE_PRODUCER_LISTEN", flag="--listen", help="gRPC HOST:PORT"
    )
    workers: int = setting(
        1,
        env="COFFEE_PRODUCER_WORKERS",
        flag="--workers",
        help="serving processes on the --listen port (SO_REUSEPORT); above 1 this process "
        "supervises them and serves their merged metrics",
        ge=1,
        le=64,
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

    @field_validator("streams_unanswered")
    @classmethod
    def _streams_hold_a_stream(cls, value: int, info: ValidationInfo) -> int:
        per_stream = info.data.get("stream_unanswered", 0)
        if value < per_stream:
            raise ValueError(f"must be at least stream_unanswered ({per_stream})")
        return value
