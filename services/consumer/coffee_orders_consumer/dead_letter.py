"""Copy bad records to the dead-letter topic: produced as they come, settled once per batch.

Each copy ends as exactly one ``Outcome``:

- WRITTEN: Kafka confirmed the whole copy: value, key, original headers and the error headers.
- EXCERPT: the whole copy could not be written (larger than the dead-letter topic's
  ``max.message.bytes``, or refused for its content); Kafka confirmed a copy holding the first
  ``EXCERPT_VALUE_BYTES`` of the value at most, the error and original coordinates in headers,
  and ``x-dead-letter-excerpt`` saying why.
- FAILED: not even that could be written: refused for good (topic missing, not authorised,
  an excerpt too large), or still failing with retriable errors (Kafka unreachable, no leader)
  after ``retry_s``. Once that budget ran out, later copies get one attempt each (librdkafka's
  own retries within ``message.timeout.ms``) and no more, until a copy gets through again.
  A missing topic is noticed from the metadata (librdkafka alone only times the copies out):
  while it is missing, copies fail at once, and it is looked for again every 10 s.
- UNSETTLED: the consumer is stopping before Kafka answered; its offset must not be stored.

Nothing here raises: whatever ``produce()`` throws becomes a failure of that copy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from coffee_orders_common import wire
from coffee_orders_common.kafka_errors import describe, error_of
from coffee_orders_common.kafka_health import AUTH_ERRORS
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from .topic_limits import Headers, headers_bytes, record_batch_bytes

log = logging.getLogger("coffee_orders.consumer")

ERROR_KIND_HEADER = "x-error-kind"
ERROR_REASON_HEADER = "x-error-reason"
ORIGIN_HEADERS = ("x-original-topic", "x-original-partition", "x-original-offset")
EXCERPT_HEADER = "x-dead-letter-excerpt"
ORIGINAL_SIZE_HEADERS = (
    "x-original-value-bytes",
    "x-original-key-bytes",
    "x-original-headers-bytes",
)
UNREADABLE_HEADERS_HEADER = "x-original-headers-unreadable"
EXCERPT_VALUE_BYTES = 64 * 1024
EXCERPT_KEY_BYTES = 1024
_MAX_REASON_BYTES = 1024
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 5.0
_STOP_WAIT_S = 1.0  # how long a stopping consumer still waits for copies in flight
_REPORT_GRACE_S = 5.0  # librdkafka reports within message.timeout.ms; beyond that, a bug
_MISSING_RECHECK_S = 10.0  # a missing dead-letter topic is looked for again this often
_METADATA_TIMEOUT_S = 5.0
_NO_SUCH_TOPIC = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC}

# The whole copy is too large, or Kafka refused it for what it holds: an excerpt may still fit.
_CONTENT_REFUSED = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD,
    KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    KafkaError._INVALID_ARG,
    KafkaError._INVALID_TYPE,
}
# Refused for good whatever the copy holds: retrying cannot help.
_TOPIC_REFUSED = {
    KafkaError._UNKNOWN_TOPIC,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.TOPIC_EXCEPTION,
    *AUTH_ERRORS,
    KafkaError.POLICY_VIOLATION,
    KafkaError.INVALID_REQUIRED_ACKS,
    KafkaError.UNSUPPORTED_COMPRESSION_TYPE,
}


class Outcome(Enum):
    WRITTEN = "written"
    EXCERPT = "excerpt"
    FAILED = "failed"
    UNSETTLED = "unsettled"


@dataclass(frozen=True)
class Settled:
    message: Message
    outcome: Outcome
    # EXCERPT: why the whole copy was not written; FAILED: why nothing was.
    detail: str = ""


class _State(Enum):
    IN_FLIGHT = "in flight"
    REPORTED = "reported"  # Kafka (or produce()) answered; not yet decided what follows
    RETRY = "retry"  # failed with a retriable error; sent again after a backoff
    SETTLED = "settled"


class _Copy:
    """One bad record on its way to the dead-letter topic."""

    def __init__(self, message: Message, kind: str, reason: str, headers_readable: bool):
        self.message = message
        self.kind = kind
        self.reason = reason
        self.headers_readable = headers_readable
        self.state = _State.REPORTED
        self.error: KafkaError | None = None
        self.excerpt_reason: str | None = None
        self.settled: Settled | None = None

    def on_delivery(self, error: KafkaError | None, _: Message) -> None:
        self.report(error)

    def report(self, error: KafkaError | None) -> None:
        self.state = _State.REPORTED
        self.error = error

    def settle(self, outcome: Outcome, detail: str = "") -> None:
        self.state = _State.SETTLED
        self.settled = Settled(self.message, outcome, detail)


class _NoRoom(Exception):
    """Even an excerpt does not fit in the dead-letter topic's max.message.bytes."""


def _text(value: str) -> bytes:
    return value.encode("utf-8", "replace")[:_MAX_REASON_BYTES]


def _failure_of(exc: Exception) -> KafkaError:
    """What produce() threw, as the error of that copy."""
    if isinstance(exc, BufferError):
        return KafkaError(KafkaError._QUEUE_FULL, "the dead-letter producer's queue is full")
    error = error_of(exc)
    if error is not None:
        return error
    return KafkaError(KafkaError._INVALID_ARG, f"{type(exc).__name__}: {exc}")


def _original_headers(message: Message, readable: bool) -> tuple[Headers, str | None]:
    """The record's headers, or none and why when confluent-kafka cannot read them.

    ``wire.message_headers`` reads them safely (and replaces unreadable ones by none for every
    later reader); a message whose handling failed unexpectedly (maybe there) is not read again
    (``readable`` False).
    """
    if not readable:
        return [], "not read again after processing the record failed"
    headers = wire.message_headers(message)
    if headers is None:
        return [], "header names that are not UTF-8"
    return list(headers), None


class DeadLetters:
    """The dead-letter producer: ``add`` each bad record of a batch, then ``settle`` them all."""

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        max_message_bytes: int,
        delivery_timeout_s: float,
        retry_s: float,
    ):
        self.topic = topic
        self.max_message_bytes = max_message_bytes
        self._config = {**config, "logger": logging.getLogger("librdkafka")}
        self._delivery_timeout_s = delivery_timeout_s
        self._retry_s = retry_s
        self._producer = Producer(self._config)
        self._copies: list[_Copy] = []
        self._given_up = False  # the retry budget ran out and no copy got through since
        self._missing: str | None = None  # why the topic is known not to exist
        self._checked_at: float | None = None  # when its metadata was last looked at

    # ---- one batch -----------------------------------------------------------------------

    def add(self, message: Message, kind: str, reason: str, headers_readable: bool = True) -> None:
        """Start copying ``message``; its outcome comes from the next ``settle``."""
        copy = _Copy(message, kind, reason, headers_readable)
        self._copies.append(copy)
        missing = self._known_missing()
        if missing is None:
            self._produce(copy)
        else:
            copy.settle(Outcome.FAILED, missing)

    def settle(self, stop: threading.Event, on_retry: Callable[[str], None]) -> list[Settled]:
        """Wait until every copy added since the last call is settled, in the order added.

        Retriable failures are sent again with a backoff for up to ``retry_s``; ``on_retry`` is
        told once per round. When ``stop`` is set, what has not settled soon is UNSETTLED.
        """
        copies, self._copies = self._copies, []
        retry_until: float | None = None
        backoff = _FIRST_BACKOFF_S
        while self._await(copies, stop):
            for copy in copies:
                if copy.state is _State.REPORTED:
                    self._route(copy)
            if any(c.state in (_State.IN_FLIGHT, _State.REPORTED) for c in copies):
                continue  # excerpts sent meanwhile, or refused at once: route those too
            retry = [c for c in copies if c.state is _State.RETRY]
            if not retry or stop.is_set():
                break
            if any(c.error and c.error.code() == KafkaError._MSG_TIMED_OUT for c in retry):
                self._look_for_topic()  # librdkafka times copies to a missing topic out
            if self._missing is not None:
                for copy in retry:
                    copy.settle(Outcome.FAILED, self._missing)
                break
            now = time.monotonic()
            retry_until = now + self._retry_s if retry_until is None else retry_until
            last_error = describe(retry[-1].error or KafkaError(KafkaError._FAIL))
            if self._given_up or now >= retry_until:
                self._given_up = True
                for copy in retry:
                    copy.settle(Outcome.FAILED, f"{last_error} (retried for {self._retry_s:g} s)")
                break
            text = (
                f"{len(retry)} dead-letter copies to {self.topic} not confirmed ({last_error});"
                f" sending them again in {backoff:g} s"
            )
            log.warning(text, extra={"fields": {"retry_for_s": round(retry_until - now, 1)}})
            on_retry(text)
            if stop.wait(backoff):
                break
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
            for copy in retry:
                self._produce(copy)
        return [c.settled or Settled(c.message, Outcome.UNSETTLED) for c in copies]

    def close(self, timeout_s: float = 5.0) -> None:
        try:
            self._producer.flush(timeout_s)
        except Exception:
            log.exception("flushing the dead-letter producer failed")

    # ---- the parts -----------------------------------------------------------------------

    def _await(self, copies: list[_Copy], stop: threading.Event) -> bool:
        """Serve delivery reports until no copy is in flight; False if stopping before that."""
        give_up_at = time.monotonic() + self._delivery_timeout_s + _REPORT_GRACE_S
        stop_at: float | None = None
        while any(c.state is _State.IN_FLIGHT for c in copies):
            now = time.monotonic()
            if stop.is_set():
                stop_at = now + _STOP_WAIT_S if stop_at is None else stop_at
                if now >= stop_at:
                    return False
            if now >= give_up_at:
                for copy in copies:
                    if copy.state is _State.IN_FLIGHT:
                        copy.report(KafkaError(KafkaError._MSG_TIMED_OUT, "no delivery report"))
                break
            try:
                self._producer.flush(0.1)
            except Exception:
                log.exception("serving dead-letter delivery reports failed")
                stop.wait(0.1)
        return True

    def _route(self, copy: _Copy) -> None:
        """Decide what follows Kafka's answer for ``copy``."""
        error = copy.error
        if error is None:
            self._given_up = False
            if copy.excerpt_reason is None:
                copy.settle(Outcome.WRITTEN)
            else:
                copy.settle(Outcome.EXCERPT, copy.excerpt_reason)
            return
        if error.fatal():
            self._renew_producer(error)
        code = error.code()
        if code in _CONTENT_REFUSED:
            if copy.excerpt_reason is None:
                copy.excerpt_reason = f"{describe(error)} (the whole copy was refused)"
                self._produce(copy)
            else:
                copy.settle(Outcome.FAILED, f"{describe(error)} (an excerpt was refused too)")
        elif code in _TOPIC_REFUSED:
            copy.settle(Outcome.FAILED, describe(error))
            if code in _NO_SUCH_TOPIC:
                self._look_for_topic()
        else:
            copy.state = _State.RETRY

    def _known_missing(self) -> str | None:
        """Why the topic does not exist, or None; its metadata is read first at the first copy
        and, while it is missing, every ``_MISSING_RECHECK_S``."""
        now = time.monotonic()
        if self._checked_at is None or (
            self._missing is not None and now - self._checked_at >= _MISSING_RECHECK_S
        ):
            self._look_for_topic()
        return self._missing

    def _look_for_topic(self) -> None:
        """Read the topic's metadata; when Kafka does not answer, what was known stays."""
        self._checked_at = time.monotonic()
        try:
            found = self._producer.list_topics(self.topic, timeout=_METADATA_TIMEOUT_S)
            error = found.topics[self.topic].error
        except (KafkaException, KeyError):
            return
        if error is not None and error.code() in _NO_SUCH_TOPIC:
            if self._missing is None:
                log.warning(f"the dead-letter topic {self.topic} does not exist")
            self._missing = f"the dead-letter topic {self.topic} does not exist"
        else:
            self._missing = None

    def _produce(self, copy: _Copy) -> None:
        """Send ``copy`` (whole, or its excerpt once that is decided); never raises."""
        try:
            key, value, headers = self._record(copy)
        except _NoRoom as exc:
            copy.settle(Outcome.FAILED, str(exc))
            return
        except Exception as exc:  # a record this code cannot even describe
            copy.report(_failure_of(exc))
            return
        copy.state = _State.IN_FLIGHT
        try:
            self._producer.produce(
                self.topic, value=value, key=key, headers=headers, on_delivery=copy.on_delivery
            )
        except Exception as exc:
            copy.report(_failure_of(exc))

    def _record(self, copy: _Copy) -> tuple[bytes | None, bytes | None, Headers]:
        """Key, value and headers of the copy to send now."""
        message = copy.message
        original, unreadable = _original_headers(message, copy.headers_readable)
        if copy.excerpt_reason is None:
            headers = [*original, *self._error_headers(copy)]
            if unreadable is not None:
                headers.append((UNREADABLE_HEADERS_HEADER, _text(unreadable)))
            size = record_batch_bytes(message.key(), message.value(), headers)
            if size <= self.max_message_bytes:
                return message.key(), message.value(), headers
            copy.excerpt_reason = (
                f"the whole copy ({size} bytes) is larger than {self.topic}'s "
                f"max.message.bytes ({self.max_message_bytes})"
            )
        return self._excerpt(copy, original, unreadable)

    def _excerpt(
        self, copy: _Copy, original: Headers, unreadable: str | None
    ) -> tuple[bytes | None, bytes | None, Headers]:
        """The first bytes of the value, the key if short, sizes and the error in headers."""
        message = copy.message
        key, value = message.key(), message.value()
        sizes = (
            "null" if value is None else str(len(value)),
            "null" if key is None else str(len(key)),
            f"unreadable: {unreadable}" if unreadable else str(headers_bytes(original)),
        )
        headers: Headers = [
            *self._error_headers(copy),
            (EXCERPT_HEADER, _text(copy.excerpt_reason or "")),
            *((name, _text(size)) for name, size in zip(ORIGINAL_SIZE_HEADERS, sizes, strict=True)),
        ]
        kept_key = key if key is not None and len(key) <= EXCERPT_KEY_BYTES else None
        # 8 bytes more: the value's length and the record's length take longer varints.
        room = self.max_message_bytes - record_batch_bytes(kept_key, b"", headers) - 8
        if room < 0 and kept_key is not None:
            kept_key = None
            room = self.max_message_bytes - record_batch_bytes(None, b"", headers) - 8
        if room < 0:
            raise _NoRoom(
                f"{copy.excerpt_reason}; even an excerpt's headers exceed {self.topic}'s "
                f"max.message.bytes ({self.max_message_bytes})"
            )
        return kept_key, None if value is None else value[: min(EXCERPT_VALUE_BYTES, room)], headers

    def _error_headers(self, copy: _Copy) -> Headers:
        message = copy.message
        origin = (message.topic() or "", str(message.partition()), str(message.offset()))
        return [
            (ERROR_KIND_HEADER, _text(copy.kind)),
            (ERROR_REASON_HEADER, _text(copy.reason)),
            *((name, _text(value)) for name, value in zip(ORIGIN_HEADERS, origin, strict=True)),
        ]

    def _renew_producer(self, error: KafkaError) -> None:
        """A fatal error makes a producer useless for good: replace it with a new one."""
        log.error(
            f"the dead-letter producer hit a fatal error; starting a new one: {describe(error)}"
        )
        old, self._producer = self._producer, Producer(self._config)
        try:
            old.purge(in_queue=True, in_flight=True, blocking=False)
            old.flush(1.0)  # serves the purged copies' reports: they are sent again
        except Exception:
            log.exception("purging the failed dead-letter producer failed")
