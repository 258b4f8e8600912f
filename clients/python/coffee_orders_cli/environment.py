"""Defaults the CLI takes from the environment: where the services are, where a local broker goes.

``COFFEE_PRODUCER_TARGET`` and ``COFFEE_CONSUMER_TARGET`` are the names the Go client's test
uses too. (``COFFEE_KAFKA_PORT``, for ``kafka up`` and ``dev``, is the local Kafka's:
``coffee_orders_localkafka.environment``.)
"""

from __future__ import annotations

import os

PRODUCER_TARGET_ENV = "COFFEE_PRODUCER_TARGET"
CONSUMER_TARGET_ENV = "COFFEE_CONSUMER_TARGET"
DEFAULT_PRODUCER_TARGET = "localhost:50051"
DEFAULT_CONSUMER_TARGET = "localhost:50052"


def producer_target() -> str:
    return os.environ.get(PRODUCER_TARGET_ENV) or DEFAULT_PRODUCER_TARGET


def consumer_target() -> str:
    return os.environ.get(CONSUMER_TARGET_ENV) or DEFAULT_CONSUMER_TARGET
