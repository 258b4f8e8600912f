"""Which of a Kafka client's error callbacks are news, worth a log line and a status entry.

librdkafka calls ``error_cb`` on every failed reconnect: against a broker that refuses the TLS
handshake that is every few milliseconds, with only the timing in the text changing ("after 3ms
in state APIVERSION_QUERY"), alternating with "1/1 brokers are down". Each distinct problem is
news once per window, the same rule the librdkafka logger's RepeatFilter applies to its lines.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError

from .logs import RepeatFilter


class ErrorNews:
    def __init__(self, window_s: float = 30.0):
        self._repeats = RepeatFilter(window_s)

    def is_news(self, error: KafkaError) -> bool:
        """True the first time this problem is seen within the window (not thread-safe: one
        instance per client, called from its callbacks)."""
        return self._repeats.filter(logging.makeLogRecord({"msg": describe(error)}))


def describe(error: KafkaError) -> str:
    return f"{error.name()}: {error.str()}"
