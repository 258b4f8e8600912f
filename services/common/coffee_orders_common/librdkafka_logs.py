"""librdkafka log lines that read like failures but are a normal part of a broker starting up.

Right after a broker starts (``make run``, the tests), it loads the coordinator that hands
idempotent producers their producer id. Until that is done it answers COORDINATOR_LOAD_IN_PROGRESS
and librdkafka logs ``WARNING ... GETPID ... Failed to acquire idempotence PID ... Coordinator
load in progress: retrying``. librdkafka retries on its own; it sends no message before it has
the id, so nothing is lost or written twice (a PlaceOrder waiting on it is confirmed once the id
arrives, or fails with UNAVAILABLE when its deadline passes first).
"""

from __future__ import annotations

import logging

_KNOWN_AT_START = ("Failed to acquire idempotence PID", "Coordinator load in progress")
EXPLANATION = (
    "Kafka is still loading the coordinator that gives idempotent producers their id "
    "(normal while a broker starts; librdkafka retries, nothing is sent before): "
)


class StartupNoiseFilter(logging.Filter):
    """Turn librdkafka's start-up "Coordinator load in progress" warning into an INFO line that
    says what it means; every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        message = record.getMessage()
        if all(part in message for part in _KNOWN_AT_START):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = EXPLANATION + "%s", (message,)
        return True
