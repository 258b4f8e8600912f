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
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from coffee_orders_common.kafka_errors import describe
from coffee_orders_common.order_state import StateEvent
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

log = logging.getLogger("coffee_orders.consumer")
TRANSACTION_TIMEOUT_MS = 10_000
_RETRY_PAUSE_S = 0.5


class StateTransactionFailed(Exception):
    """A fatal error of the transactional producer (fenced by another instance with its id)."""


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
        self._timeout_s = timeout_s
        self._producer = Producer(config)
        self.committed = 0
        self.aborted = 0

    def start(self) -> None:
        """Register the transactional.id (fencing an earlier holder); KafkaException if Kafka
        does not answer within the timeout."""
        self._producer.init_transactions(self._timeout_s)

    def commit(
        self,
        events: list[StateEvent],
        offsets: list[TopicPartition],
        group_metadata: Any,
        beat: Callable[[], None],
    ) -> str:
        """Commit ``events`` and ``offsets`` together: "" when done, else why they were not
        (the transaction was aborted; the batch must be read again)."""
        producer = self._producer
        try:
            producer.begin_transaction()
            for event in events:
                producer.produce(self.topic, key=event.key(), value=event.value())
                producer.poll(0)
            if offsets:
                producer.send_offsets_to_transaction(offsets, group_metadata, self._timeout_s)
            self._commit_retrying(beat)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.fatal():
                raise StateTransactionFailed(describe(error)) from None
            self._abort(beat)
            return describe(error) if isinstance(error, KafkaError) else str(error)
        except BufferError as exc:  # more events than the producer's queue: abort, read again
            self._abort(beat)
            return f"the producer's queue is full ({exc})"
        self.committed += 1
        return ""

    def _commit_retrying(self, beat: Callable[[], None]) -> None:
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                self._producer.commit_transaction(self._timeout_s)
                return
            except KafkaException as exc:
                error = exc.args[0]
                retriable = isinstance(error, KafkaError) and error.retriable()
                if not retriable or time.monotonic() > deadline:
                    raise
                beat()
                time.sleep(_RETRY_PAUSE_S)

    def _abort(self, beat: Callable[[], None]) -> None:
        self.aborted += 1
        beat()
        try:
            self._producer.abort_transaction(self._timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            if isinstance(error, KafkaError) and error.fatal():
                raise StateTransactionFailed(describe(error)) from None
            log.warning(
                "aborting the order-state transaction failed",
                extra={"fields": {"error": str(error)}},
            )

    def close(self) -> None:
        self._producer.flush(1)
