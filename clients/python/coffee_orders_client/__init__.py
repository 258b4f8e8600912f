"""A small typed Python client for the coffee-orders services."""

from .orders import OrderClient, PlacedOrder, RejectedOrder

__all__ = ["OrderClient", "PlacedOrder", "RejectedOrder"]
