"""Typed Python clients for the coffee-orders services (sync and asyncio)."""

from .orders import (
    AsyncCoffeeOrdersClient,
    CoffeeOrdersClient,
    ConsumerError,
    ConsumerStatus,
    NewOrder,
    PlacedOrder,
    RejectedOrder,
    WatchErrorsReply,
    tls_credentials,
)
from .service_config import SERVICE_CONFIG, SERVICE_CONFIG_JSON

__all__ = [
    "SERVICE_CONFIG",
    "SERVICE_CONFIG_JSON",
    "AsyncCoffeeOrdersClient",
    "CoffeeOrdersClient",
    "ConsumerError",
    "ConsumerStatus",
    "NewOrder",
    "PlacedOrder",
    "RejectedOrder",
    "WatchErrorsReply",
    "tls_credentials",
]
