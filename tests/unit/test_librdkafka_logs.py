"""librdkafka's start-up "Coordinator load in progress" warning is an INFO line that explains it."""

from __future__ import annotations

import logging

from coffee_orders_common.librdkafka_logs import EXPLANATION, StartupNoiseFilter

# As confluent-kafka hands it to the "librdkafka" logger on a broker that has just started.
GETPID = (
    "GETPID [coffee-orders-dead-letters#producer-1] [thrd:main]: Failed to acquire idempotence "
    "PID from broker 127.0.0.1:53561/1: Broker: Coordinator load in progress: retrying"
)


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("librdkafka", level, __file__, 1, "%s", (message,), None)


def test_the_start_up_warning_becomes_an_info_line_that_says_it_is_normal() -> None:
    record = _record(logging.WARNING, GETPID)
    assert StartupNoiseFilter().filter(record)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")
    assert record.getMessage() == EXPLANATION + GETPID


def test_other_warnings_pass_unchanged() -> None:
    other = GETPID.replace("Coordinator load in progress", "Broker: Not enough replicas")
    for level, message in ((logging.WARNING, other), (logging.ERROR, GETPID)):
        record = _record(level, message)
        assert StartupNoiseFilter().filter(record)
        assert record.levelno == level and record.getMessage() == message
