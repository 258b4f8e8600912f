"""Producer settings on top of the shared ones."""

from __future__ import annotations

from coffee_orders_common.settings import ServiceSettings
from pydantic import Field

PRODUCER_ENV = {
    "COFFEE_PRODUCER_LISTEN": "listen",
    "COFFEE_PRODUCER_MAX_IN_FLIGHT": "max_in_flight",
    "COFFEE_PRODUCER_REQUEST_ID_CACHE": "request_id_cache_size",
}


class ProducerSettings(ServiceSettings):
    listen: str = "0.0.0.0:50051"
    # Orders waiting for Kafka at once; more get RESOURCE_EXHAUSTED instead of piling up.
    max_in_flight: int = Field(default=10_000, ge=1, le=1_000_000)
    # How many confirmed request_ids this instance remembers to answer repeats without publishing.
    request_id_cache_size: int = Field(default=100_000, ge=0, le=10_000_000)
