"""Commit a batch's order-state events and its consumed offsets in one Kafka transaction.

confluent-kafka's transactional pattern (``examples/eos-transactions.py``): begin, produce the
events, ``send_offsets_to_transaction`` with the consumer's group metadata, commit. Either both
the events and the offsets are committed, or neither is: a crash, a rebalance that took the
partitions (the group's generation fences the commit) or a Kafka error aborts the transaction,
and the batch is read again by whoever holds its partitions, with nothing recorded of it.

The transactional.id is the group's and the instance's (``group.instance.id`` when set: a
restarted static member fences its former self at once; else host, pid and a random part). A
process killed inside a transaction leaves it open until ``transaction.timeout.ms``
(``TRANSACTION_TIMEOUT_MS``), when the broker aborts it: until then the order-state topic's
readers stop at it.

librdkafka's ``send_offsets_to_transaction`` can block for good, past its timeout, when the
group coordinator went away (confluentinc/librdkafka#5456 and #5511, open; seen here after the
only broker was killed and restarted). The call runs in a thread of its own with a bound; past
it the producer is replaced by a new one with the same transactional.id, whose registration
fences the stuck one and aborts its transaction at once. ``MAX_REPLACEMENTS`` in a row without a
commit end the consume loop (exit 70: a restart).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from coffee_orders_common.kafka_errors import describe_exception, error_of
from coffee_orders_common.order_state import StateEvent
from confluent_kafka import KafkaException, Producer, TopicPartition

log = logging.getLogger("coffee_orders.consumer")
TRANSACTION_TIMEOUT_MS = 10_000
MAX_REPLACEMENTS = 5
FINISH_ATTEMPTS = 6  # commit/abort calls answered "retriable" before the producer is replaced
_STUCK_MARGIN_S = 5.0  # beyond the call's own timeout: the call is stuck


class StateTransactionFailed(Exception):
    """A fatal error of the transactional producer (fenced by another instance with its id),
    or a producer stuck again and again."""


class _Stuck(Exception):
    """A call of the transactional producer did not return within its bound."""


class _Fatal(Exception):
    """The transactional producer reported a fatal error: it can never work again."""


def transactional_id(group_id: str, properties: dict[str, str]) -> str:
    instance = properties.get("group.instance.id") or (
        f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
    )
    return f"coffee-orders-state.{group_id}.{instance}"


def state_producer_config(producer_config: dict[str, str], group_id: str) -> dict[str, Any]:
    """The transactional producer: acks=all and idempotence are what transactions require,
    whatever KAFKA_REQUIRED_ACKS says for the orders."""
    return {
        **producer_config,
        "acks": "all",
        "enable.idempotence": "true",
        "transactional.id": transactional_id(group_id, producer_config),
        "transaction.timeout.ms": str(TRANSACTION_TIMEOUT_MS),
        "logger": logging.getLogger("librdkafka"),
    }


class StateTransactions:
    def __init__(self, config: dict[str, Any], topic: str, timeout_s: float):
        self.topic = topic
        self._config = config
        self._timeout_s = timeout_s
        self._producer = Producer(config)
        self._registered = False
        self._replaced_in_a_row = 0
        self.committed = 0
        self.aborted = 0

    def start(self) -> None:
        """Register the transactional.id (fencing an earlier holder); KafkaException if Kafka
        does not answer within the timeout."""
        self._producer.init_transactions(self._timeout_s)
        self._registered = True

    def commit(
        self,
        events: list[StateEvent],
        offsets: list[TopicPartition],
        group_metadata: Any,
        beat: Callable[[], None],
    ) -> str:
        """Commit ``events`` and ``offsets`` together: "" when done, else why they were not
        (the transaction was aborted; the batch must be read again). A producer that failed
        for good (a fatal error, seen in a rolling restart of the brokers as INVALID_TXN_STATE)
        is replaced; registering the new one aborts what the old one left open."""
        try:
            return self._commit(events, offsets, group_metadata, beat)
        except _Fatal as fatal:
            self._replace(f"failed for good ({fatal})")
            return str(fatal)

    def _commit(
        self,
        events: list[StateEvent],
        offsets: list[TopicPartition],
        group_metadata: Any,
        beat: Callable[[], None],
    ) -> str:
        try:
            if not self._registered:
                self.start()
            producer = self._producer
            producer.begin_transaction()
            for event in events:
                producer.produce(self.topic, key=event.key(), value=event.value())
            producer.poll(0)  # once per batch: nothing waits on the events' delivery reports
            if offsets:
                self._bounded(
                    lambda: producer.send_offsets_to_transaction(
                        offsets, group_metadata, self._timeout_s
                    ),
                    beat,
                )
        except _Stuck:
            self._replace("stuck in send_offsets_to_transaction (confluentinc/librdkafka#5456)")
            return "the transactional producer was stuck in send_offsets_to_transaction"
        except BufferError as exc:  # more events than the producer's queue: abort, read again
            return self._abandon(f"the producer's queue is full ({exc})", beat)
        except KafkaException as exc:
            why = _described(exc)
            if not self._registered:  # the registration failed: nothing to abort
                return why
            return self._abandon(why, beat)
        problem = self._finish(self._producer.commit_transaction, beat)
        if problem is not None:
            return self._abandon(problem, beat)
        self.committed += 1
        self._replaced_in_a_row = 0
        return ""

    def _finish(self, call: Callable[[float], None], beat: Callable[[], None]) -> str | None:
        """``call`` (commit_transaction or abort_transaction), resumed while Kafka answers that
        it may be retried (a timed-out call goes on inside librdkafka: calling anything else
        meanwhile is refused as a conflict); None when done, else why not."""
        for _ in range(FINISH_ATTEMPTS):
            try:
                call(self._timeout_s)
                return None
            except KafkaException as exc:
                error = error_of(exc)
                if not (error is not None and error.retriable()):
                    return _described(exc)
                beat()
        return f"still not finished after {FINISH_ATTEMPTS} attempts of {self._timeout_s:g} s"

    def _abandon(self, why: str, beat: Callable[[], None]) -> str:
        """Abort the transaction (the batch is read again); a producer that cannot abort is
        replaced, and registering the new one aborts the transaction instead."""
        self.aborted += 1
        beat()
        problem = self._finish(self._producer.abort_transaction, beat)
        if problem is not None:
            self._replace(f"cannot abort ({problem})")
        return why

    def _bounded(self, call: Callable[[], None], beat: Callable[[], None]) -> None:
        """``call()`` in a thread of its own; _Stuck when it does not return in time."""
        raised: list[BaseException] = []

        def run() -> None:
            try:
                call()
            except BaseException as exc:  # handed to the caller's thread
                raised.append(exc)

        thread = threading.Thread(target=run, name="order-state-offsets", daemon=True)
        thread.start()
        deadline = time.monotonic() + self._timeout_s + _STUCK_MARGIN_S
        while thread.is_alive() and time.monotonic() < deadline:
            beat()
            thread.join(0.5)
        if thread.is_alive():
            raise _Stuck()
        if raised:
            raise raised[0]

    def _replace(self, why: str) -> None:
        """A new producer with the same transactional.id; registering it (now or at the next
        commit) fences the old one and aborts its transaction."""
        self._replaced_in_a_row += 1
        if self._replaced_in_a_row > MAX_REPLACEMENTS:
            raise StateTransactionFailed(
                f"the transactional producer was replaced {MAX_REPLACEMENTS} times in a row "
                f"without a commit; last: {why}"
            )
        log.warning(
            f"the order-state producer is {why}; replacing it",
            extra={"fields": {"topic": self.topic, "times_in_a_row": self._replaced_in_a_row}},
        )
        self._producer = Producer(self._config)  # a stuck one stays with its thread
        self._registered = False
        try:
            self.start()
        except KafkaException as exc:  # tried again before the next transaction
            log.warning(
                "registering the new order-state producer failed",
                extra={"fields": {"error": str(exc.args[0])}},
            )

    def close(self) -> None:
        try:
            self._producer.flush(1)
        except KafkaException as exc:  # a fenced or failed producer: nothing left to send
            log.info("order-state producer closed", extra={"fields": {"error": str(exc)}})


def _described(exc: KafkaException) -> str:
    """The error's description; _Fatal for a fatal one (the producer is replaced)."""
    error = error_of(exc)
    if error is not None and error.fatal():
        raise _Fatal(describe_exception(exc)) from None
    return describe_exception(exc)
