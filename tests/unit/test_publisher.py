"""The Publisher's own lifecycle, without a broker: close() must always end."""

from __future__ import annotations

import asyncio

import pytest
from coffee_orders_common.kafka_errors import FatalKafkaError
from coffee_orders_producer import publisher
from coffee_orders_producer.publisher import Publisher
from confluent_kafka import KafkaError

_UNREACHABLE = {"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": "1000"}


async def test_close_ends_when_a_publish_lands_in_the_same_tick() -> None:
    """A publish wakes the idle poller in the very tick close() stops it: on Python 3.11 a
    cancel() landing there is swallowed by wait_for, and close() then waited for ever."""
    publisher = Publisher(_UNREACHABLE)
    publisher.start()
    for _ in range(5):  # let the poller reach its idle wait
        await asyncio.sleep(0)
    publisher.publish("t", b"k", b"v", [], lambda error, message: None)
    undelivered = await asyncio.wait_for(publisher.close(0.1), timeout=60)  # bound means hung
    assert undelivered == 1
    assert publisher.poller.done()


async def test_close_ends_while_messages_are_in_flight() -> None:
    publisher = Publisher(_UNREACHABLE)
    publisher.start()
    for index in range(100):
        publisher.publish("t", b"k", str(index).encode(), [], lambda error, message: None)
        await asyncio.sleep(0)
    undelivered = await asyncio.wait_for(publisher.close(0.1), timeout=60)
    assert undelivered == 100


async def test_close_ends_while_the_poller_hangs_between_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poller stuck between polls (the liveness tests make it sleep an hour) must not hold up
    the shutdown: close() flushes without it."""
    monkeypatch.setattr(publisher, "_BUSY_POLL_S", 3600.0)
    producing = publisher.Publisher(_UNREACHABLE)
    producing.start()
    producing.publish("t", b"k", b"v", [], lambda error, message: None)
    for _ in range(5):  # the poller is now in its hour-long pause
        await asyncio.sleep(0)
    undelivered = await asyncio.wait_for(producing.close(0.1), timeout=60)
    assert undelivered == 1


async def test_a_fatal_client_error_ends_the_poller_with_the_error() -> None:
    """librdkafka's producer can never send again after a fatal error (an idempotent producer
    that lost its sequence): the poller ends, so the watchdog stops the service (exit code 70)
    instead of leaving a producer that refuses every order while it says SERVING."""
    producing = Publisher(_UNREACHABLE)
    producing.start()
    # What librdkafka's error_cb hands over on a fatal error.
    producing._on_client_error(KafkaError(KafkaError._FATAL, "sequence lost", fatal=True))
    with pytest.raises(FatalKafkaError, match="_FATAL: sequence lost"):
        await asyncio.wait_for(producing.poller, timeout=60)  # bound means hung
    assert await asyncio.wait_for(producing.close(0.1), timeout=60) == 0
