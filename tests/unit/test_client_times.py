"""Times the client and the CLI read from replies are the instants the server sent, whatever the
machine's time zone (no broker needed)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from coffee.orders.v1 import orders_pb2
from coffee_orders_cli.status_command import _time
from coffee_orders_client.orders import _placed


@pytest.fixture
def berlin_time() -> Iterator[None]:
    """The process's local time zone is UTC+1 (+2 in summer) for the test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Europe/Berlin"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_placed_order_timestamp_is_the_replys_instant_in_any_time_zone(berlin_time: None) -> None:
    reply = orders_pb2.PlaceOrderResponse(order_id="o-1", topic="coffee_orders", offset=7)
    reply.timestamp.FromMilliseconds(1_700_000_000_123)
    placed = _placed(reply)
    assert placed.timestamp.timestamp() == 1_700_000_000.123
    assert placed.to_proto() == reply  # what --json prints is what the server sent


def test_status_times_are_shown_in_local_time_for_the_right_instant(berlin_time: None) -> None:
    reply = orders_pb2.PlaceOrderResponse()
    reply.timestamp.FromSeconds(1_700_000_000)  # 2023-11-14T22:13:20Z
    assert _time(reply.timestamp) == "2023-11-14T23:13:20+01:00"
