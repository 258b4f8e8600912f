"""The gRPC service config mesh callers should use: deadlines, waitForReady, safe retries.

PlaceOrder is retried on UNAVAILABLE, and on CANCELLED, which a caller sees when a producer that
is shutting down cuts off a call it had not started (the client's own cancellations are never
retried). Each attempt carries the same request_id, so a retried order gets the same order_id and
is published at most once per producer instance (and skipped by the consumer if it was published
twice). DEADLINE_EXCEEDED is not retried automatically: the
order may still be delivered; retry by hand with the same request_id.
"""

from __future__ import annotations

import json
from importlib import resources

SERVICE_CONFIG_JSON = resources.files(__package__).joinpath("service_config.json").read_text()
SERVICE_CONFIG = json.loads(SERVICE_CONFIG_JSON)

CHANNEL_OPTIONS: list[tuple[str, object]] = [
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
    ("grpc.enable_retries", 1),
    ("grpc.keepalive_time_ms", 30_000),
]
