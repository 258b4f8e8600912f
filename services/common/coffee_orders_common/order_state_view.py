"""Read the order-state topic, from its start and then as it grows, into an ``OrderIndex``.

A thread of its own polls a read_committed consumer that is assigned every partition of the
topic (no consumer group: every instance reads all of it). Events of aborted transactions are
never seen. ``caught_up`` is the barrier the consumer passes before it decides that an order is
new: the topic's last stable offsets, asked for now, and the view's positions at or past them.

Whoever waits for an order (WatchOrder, PlaceOrder with WAIT_FOR_PROCESSED) registers a
listener for its order_id; the thread calls it with each new event of that order.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from .liveness import Heartbeat
from .order_state import BadEvent, OrderIndex, StateEvent, parse_event, processed_key

log = logging.getLogger("coffee_orders.order_state")
Listener = Callable[[StateEvent], None]
_POLL_S = 0.1
_BATCH = 1000
_PARTITIONS_RECHECK_S = 10.0
_MISSING_RECHECK_S = 1.0
_OPEN_TRANSACTION_RECHECK_S = 0.02


def view_config(client_config: dict[str, str], client_id: str) -> dict[str, Any]:
    """A group-less, read_committed consumer configuration from a client's base settings."""
    config: dict[str, Any] = {
        key: value
        for key, value in client_config.items()
        if not key.startswith(("group.", "enable.auto", "auto.", "partition.assignment"))
        and key not in {"session.timeout.ms", "heartbeat.interval.ms", "isolation.level"}
    }
    config.update(
        {
            "client.id": client_id,
            "group.id": "coffee-orders-order-state-view",  # required by librdkafka; never joined
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": "20",  # the barrier waits for the view's next fetch
            # A topic deleted and created again starts at offset 0 once more: read it from there.
            "auto.offset.reset": "earliest",
            "logger": logging.getLogger("librdkafka"),
        }
    )
    return config


class OrderStateView:
    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        window_s: float,
        max_orders: int,
        create_missing: Callable[[], None] | None = None,
    ):
        """``create_missing``: called (on the view's thread) while the topic does not exist."""
        self.topic = topic
        self._create_missing = create_missing
        self._consumer = Consumer(config)
        # Asks for the last stable offsets from other threads: a query on the polled consumer
        # waits while another thread is inside its consume() (seen: for good).
        self._offsets = Consumer(config)
        self._ends = Consumer({**config, "isolation.level": "read_uncommitted"})
        self._offsets_lock = threading.Lock()
        self._lock = threading.Condition()
        self._index = OrderIndex(window_s, max_orders)
        self._positions: dict[int, int] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._stop = threading.Event()
        self.restored = threading.Event()
        self.restore_seconds: float | None = None
        self.bad_events = 0
        self.problem = ""  # why the topic cannot be read now; "" while it can
        self.heartbeat = Heartbeat()
        self.thread = threading.Thread(target=self._run, name="order-state-view", daemon=True)

    # ---- what callers ask ----------------------------------------------------------------

    def processed(self, order_id: str, order_identity: bytes) -> bool:
        with self._lock:
            return self._index.processed(order_id, order_identity)

    def get(
        self, order_id: str, orders_topic: str, order_identity: bytes = b""
    ) -> StateEvent | None:
        with self._lock:
            return self._index.get(order_id, orders_topic, order_identity)

    def record(self, events: list[StateEvent]) -> None:
        """Events this instance has just committed: known at once, before the view reads them."""
        with self._lock:
            for event in events:
                self._apply(event)

    def listen(self, order_id: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` (on the view's thread) with each new event of ``order_id``;
        returns the function that stops it."""
        with self._lock:
            self._listeners.setdefault(order_id, []).append(listener)

        def stop() -> None:
            with self._lock:
                listeners = self._listeners.get(order_id, [])
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    self._listeners.pop(order_id, None)

        return stop

    @property
    def orders(self) -> int:
        with self._lock:
            return len(self._index)

    @property
    def evicted_early(self) -> int:
        with self._lock:
            return self._index.evicted_early

    def caught_up(self, timeout_s: float) -> bool:
        """Whether, within the bound, every transaction that wrote to the topic before this call
        has ended and the view holds all that they committed.

        The end of what may be read (the last stable offset) stops at the first transaction
        still open; committed events of others may lie behind it. So the barrier waits until
        that offset passes the end of the log as it was at the call (every transaction open
        then has committed or aborted), then until the view has read up to it.
        """
        deadline = time.monotonic() + timeout_s
        try:
            written = self._ends_of(self._ends, timeout_s)
            while True:
                targets = self._ends_of(self._offsets, deadline - time.monotonic())
                if all(targets[number] >= end for number, end in written.items()):
                    break
                if time.monotonic() > deadline or self._stop.wait(_OPEN_TRANSACTION_RECHECK_S):
                    self.problem = "a transaction on it is still open"
                    return False
        except KafkaException as exc:
            self.problem = f"cannot ask {self.topic} for its offsets: {exc.args[0].str()}"
            return False
        with self._lock:
            while not self._reached(targets):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._lock.wait(min(remaining, 0.5))
        return True

    # ---- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            partitions_checked = 0.0
            restore_targets: dict[int, int] | None = None
            while not self._stop.is_set():
                self.heartbeat.beat()
                # Until the topic is found (the consumer creates it), it is looked for each second.
                recheck_s = _PARTITIONS_RECHECK_S if self._positions else _MISSING_RECHECK_S
                if time.monotonic() - partitions_checked > recheck_s:
                    self._assign_new_partitions()
                    partitions_checked = time.monotonic()
                if restore_targets is None and self._positions:
                    restore_targets = self._restore_targets()
                messages = self._consumer.consume(_BATCH, _POLL_S)
                with self._lock:
                    for message in messages:
                        if message.error() is None and not self._known(message.key()):
                            self._read(message.value())
                    self._update_positions()
                    if restore_targets and self._reached(restore_targets):
                        restore_targets = {}
                        self.restore_seconds = time.monotonic() - started
                        self.restored.set()
                        log.info(
                            "order state restored",
                            extra={
                                "fields": {
                                    "topic": self.topic,
                                    "orders": len(self._index),
                                    "seconds": round(self.restore_seconds, 2),
                                }
                            },
                        )
                    self._lock.notify_all()
        except Exception as exc:  # the watchdog names it and fails the service
            self.heartbeat.ended(exc)
        finally:
            self._consumer.close()
            with self._offsets_lock:
                self._offsets.close()
                self._ends.close()

    def _assign_new_partitions(self) -> None:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=5)
        except KafkaException as exc:
            self.problem = f"cannot read the metadata of {self.topic}: {exc.args[0].str()}"
            return
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            self.problem = f"the order-state topic {self.topic} does not exist"
            if self._positions:
                self._forget_partitions()
            if self._create_missing is not None:
                self._create_missing()
            return
        self.problem = ""
        new = sorted(set(topic.partitions) - set(self._positions))
        if new:
            self._consumer.incremental_assign(
                [TopicPartition(self.topic, number, OFFSET_BEGINNING) for number in new]
            )
            with self._lock:
                for number in new:
                    self._positions[number] = -1

    def _forget_partitions(self) -> None:
        """The topic is gone: read it again from its start once it is back (what was read
        stays known; what others commit meanwhile is read then)."""
        log.warning(
            f"the order-state topic {self.topic} disappeared; it is read again from its start "
            "once it is back",
            extra={"fields": {"topic": self.topic}},
        )
        self._consumer.unassign()
        with self._lock:
            self._positions.clear()

    def _restore_targets(self) -> dict[int, int] | None:
        try:
            return self._ends_of(self._offsets, 5.0)
        except KafkaException:
            return None

    def _ends_of(self, client: Consumer, timeout_s: float) -> dict[int, int]:
        """Each partition's end as ``client`` sees it: the last stable offset (read_committed:
        the end of what may be read) or the log's end (read_uncommitted); -1 where that is the
        low watermark (nothing to read)."""
        with self._lock:
            numbers = list(self._positions)
        if not numbers:
            raise KafkaException(_no_partitions(self.topic))
        ends = {}
        with self._offsets_lock:
            for number in numbers:
                low, end = client.get_watermark_offsets(
                    TopicPartition(self.topic, number), timeout=max(timeout_s, 0.1), cached=False
                )
                ends[number] = -1 if end <= low else end
            client.poll(0)  # serves its queued log lines (it has no partitions: no records)
        return ends

    def _reached(self, targets: dict[int, int]) -> bool:
        return all(self._positions.get(number, -1) >= end for number, end in targets.items())

    def _update_positions(self) -> None:
        assigned = [TopicPartition(self.topic, number) for number in self._positions]
        for tp in self._consumer.position(assigned):
            if tp.error is None and tp.offset >= 0:
                self._positions[tp.partition] = tp.offset

    def _known(self, key: bytes | None) -> bool:
        """Whether the record's key names an order already known as processed with that very
        content: its event would tell nothing new (this instance's own events, recorded when
        committed, come back this way), so it is not parsed."""
        named = processed_key(key)
        return named is not None and self._index.processed(*named)

    def _read(self, value: bytes | None) -> None:
        try:
            event = parse_event(value)
            self._apply(event)
        except (BadEvent, ValueError, OverflowError, struct.error) as bad:
            self.bad_events += 1
            if self.bad_events == 1 or self.bad_events % 1000 == 0:
                log.warning(
                    "skipping a record of the order-state topic",
                    extra={"fields": {"topic": self.topic, "reason": str(bad)}},
                )
            return

    def _apply(self, event: StateEvent) -> None:
        if self._index.add(event):
            for listener in self._listeners.get(event.order_id, ()):
                listener(event)


def _no_partitions(topic: str) -> KafkaError:
    return KafkaError(KafkaError._UNKNOWN_TOPIC, f"the order-state topic {topic} is not read yet")
