"""Typed Python clients for the coffee-orders services (sync and asyncio)."""

from .orders import (
    AsyncCoffeeOrdersClient,
    CoffeeOrdersClient,
    ConsumerError,
    ConsumerStatus,
    NewOrder,
    OrderDeadLettered,
    OrderNotProcessedInTime,
    PlacedButNotProcessed,
    PlacedOrder,
    RejectedOrder,
    WatchDeadlineExceeded,
    WatchErrorsReply,
    tls_credentials,
)
from .service_config import SERVICE_CONFIG, SERVICE_CONFIG_JSON
from .tracking import OrderState, OrderStatus, Placement, WaitFor

__all__ = [
    "SERVICE_CONFIG",
    "SERVICE_CONFIG_JSON",
    "AsyncCoffeeOrdersClient",
    "CoffeeOrdersClient",
    "ConsumerError",
    "ConsumerStatus",
    "NewOrder",
    "OrderDeadLettered",
    "OrderNotProcessedInTime",
    "OrderState",
    "OrderStatus",
    "PlacedButNotProcessed",
    "PlacedOrder",
    "Placement",
    "RejectedOrder",
    "WaitFor",
    "WatchDeadlineExceeded",
    "WatchErrorsReply",
    "tls_credentials",
]
