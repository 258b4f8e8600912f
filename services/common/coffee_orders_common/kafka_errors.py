"""Kafka errors: how one is described, the error inside a KafkaException, and which of a
client's error callbacks are worth a log line and a status entry.

librdkafka calls ``error_cb`` on every failed reconnect: against a broker that refuses the TLS
handshake that is every few milliseconds, with only the timing in the text changing ("after 3ms
in state APIVERSION_QUERY"), alternating with "1/1 brokers are down". Each distinct problem is
news once per window, the same rule the librdkafka logger's RepeatFilter applies to its lines.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException

from .logs import RepeatFilter


class FatalKafkaError(Exception):
    """librdkafka reported a fatal error: this Kafka client can never work again."""


def is_fatal(error: KafkaError) -> bool:
    """librdkafka's fatal errors: flagged, or delivered as _FATAL (as a consume error)."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


class RepeatedErrorFilter:
    def __init__(self, window_s: float = 30.0):
        self._repeats = RepeatFilter(window_s)

    def first_in_window(self, error: KafkaError) -> bool:
        """True the first time this problem is seen within the window (not thread-safe: one
        instance per client, called from its callbacks)."""
        return self._repeats.filter(logging.makeLogRecord({"msg": describe(error)}))


def describe(error: KafkaError) -> str:
    """``NAME: text``, as every log line and status entry gives a Kafka error."""
    return f"{error.name()}: {error.str()}"


def error_of(exc: BaseException) -> KafkaError | None:
    """The KafkaError a KafkaException carries (None: another exception, or none inside)."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def describe_exception(exc: BaseException) -> str:
    """``describe`` of the error inside, or the exception's own text."""
    error = error_of(exc)
    return describe(error) if error is not None else str(exc)
