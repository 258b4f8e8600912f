"""The consumer's side of the order-state topic: what it checks before an order, and what it
records after.

Before a batch, the view of the topic must hold every event committed so far (``ready``): at
once after partitions were assigned (a new owner learns what the previous one did), and with a
short bound before every batch (a copy of an order on another partition, after partitions were
added, is known as well). An order whose identity is in the view, or earlier in the same batch,
is a duplicate. After the batch, its events and its offsets are committed in one transaction
(``StateTransactions``) and the view knows them at once.
"""

from __future__ import annotations

import os
import socket
import time
from collections import OrderedDict
from collections.abc import Callable

from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_common.order_state import State, StateEvent, identity, now_ms
from coffee_orders_common.order_state_view import OrderStateView
from confluent_kafka import Message

from .decoder import DecodedOrder, stated_order_id
from .state_transactions import StateTransactions

# How long a batch waits for the view: after an assignment, a killed member's open transaction
# may hold the topic until the broker aborts it (transaction.timeout.ms plus its check interval).
ASSIGNED_CATCH_UP_S = 30.0
BATCH_CATCH_UP_S = 5.0
_ATTEMPT_S = 1.0
UNRECORDED_BATCHES = 10  # aborted batches the memo holds, of COFFEE_CONSUMER_BATCH_MAX each


class OrderStates:
    def __init__(self, view: OrderStateView, transactions: StateTransactions, batch_max: int):
        """``batch_max``: COFFEE_CONSUMER_BATCH_MAX; the memo of aborted batches holds
        ``UNRECORDED_BATCHES`` of that size."""
        self.view = view
        self.transactions = transactions
        self._instance = f"{socket.gethostname()}/{os.getpid()}"
        self.member_id = ""
        self.catch_up_needed = True
        self._events: list[StateEvent] = []
        self._batch_identities: set[bytes] = set()
        # Records this instance handled (processed, or dead-lettered: the copy settled) in a batch
        # whose transaction was aborted, by (partition, offset), with a digest of their key and
        # value and their events (None: a rejected record that states no order_id). Read again
        # after the rewind, they are recorded without being handled a second time. Kept across
        # a revocation, a lost assignment and a rejoin: after a broker restart the group often
        # hands the same partitions back to this very instance, which did the work.
        self._unrecorded: OrderedDict[tuple[int, int], tuple[int, StateEvent | None]] = (
            OrderedDict()
        )
        self._max_unrecorded = UNRECORDED_BATCHES * batch_max

    def ready(self, beat: Callable[[], None]) -> bool:
        """Whether the view is caught up, so that duplicates can be told (waits a bounded time,
        calling ``beat`` at least every second: waiting here is no stall)."""
        bound = ASSIGNED_CATCH_UP_S if self.catch_up_needed else BATCH_CATCH_UP_S
        deadline = time.monotonic() + bound
        while not self.view.caught_up(min(_ATTEMPT_S, max(deadline - time.monotonic(), 0.0))):
            beat()
            if time.monotonic() >= deadline:
                return False
        self.catch_up_needed = False
        return True

    def start_batch(self) -> None:
        self._events = []
        self._batch_identities = set()

    def new_identity(self, decoded: DecodedOrder) -> bytes | None:
        """The order's identity, or None when it is a duplicate (processed before, or earlier
        in this batch)."""
        order_identity = identity(decoded.order_id, decoded.order)
        if order_identity in self._batch_identities or self.view.processed(
            decoded.order_id, order_identity
        ):
            return None
        self._batch_identities.add(order_identity)
        return order_identity

    def handled_before(self, message: Message) -> tuple[bool, StateEvent | None]:
        """Whether this instance handled this record before a transaction was aborted (the
        rewind brought it back), and its event, which goes into the batch again as it was."""
        position = (message.partition() or 0, message.offset() or 0)
        memo = self._unrecorded.get(position)
        if memo is None:
            return False, None
        digest, event = memo
        if digest != _digest(message):  # another record there now (the topic was recreated)
            del self._unrecorded[position]
            return False, None
        if event is not None:
            self._events.append(event)
            if event.state is State.PROCESSED:
                self._batch_identities.add(event.identity)
        return True, event

    def aborted(
        self,
        events: list[StateEvent],
        dead_lettered: list[tuple[int, int]],
        batch: list[Message],
    ) -> None:
        """The batch's transaction was aborted: remember its processed orders and its rejected
        records whose copies settled (``dead_lettered``: partition and offset)."""
        digests = {
            (m.partition() or 0, m.offset() or 0): _digest(m) for m in batch if m.error() is None
        }
        for position in dead_lettered:
            self._unrecorded[position] = (digests.get(position, 0), None)
        for event in events:
            position = (event.partition, event.offset)
            self._unrecorded[position] = (digests.get(position, 0), event)
        while len(self._unrecorded) > self._max_unrecorded:
            self._unrecorded.popitem(last=False)

    def committed(self, next_offsets: dict[int, int]) -> None:
        """Offsets committed: what they cover is recorded for good."""
        if self._unrecorded:
            for position in [p for p in self._unrecorded if p[1] < next_offsets.get(p[0], -1)]:
                del self._unrecorded[position]

    def forget(self, partitions: list[int]) -> None:
        """The partitions' topic was deleted and created again: their offsets mean new records."""
        gone = set(partitions)
        for position in [p for p in self._unrecorded if p[0] in gone]:
            del self._unrecorded[position]

    def processed(self, decoded: DecodedOrder, order_identity: bytes, message: Message) -> None:
        self._events.append(self._event(decoded.order_id, State.PROCESSED, order_identity, message))

    def rejected(
        self, message: Message, kind: pb.ErrorKind, reason: str, headers_readable: bool
    ) -> None:
        order_id = stated_order_id(message, headers_readable)
        if order_id is not None:
            kind_name = pb.ErrorKind.Name(kind).removeprefix("ERROR_KIND_")
            self._events.append(
                self._event(order_id, State.DEAD_LETTERED, b"", message, kind_name, reason)
            )

    def batch_events(self, last_done: dict[int, int]) -> list[StateEvent]:
        """The batch's events to commit: every processed order (also those after a record
        whose dead-letter copy is not settled: their lines are written, and when they come
        again they are skipped), and the rejected records up to the last done offset of their
        partition (a copy not settled is not dead-lettered yet)."""
        return [
            e
            for e in self._events
            if e.state is State.PROCESSED or e.offset <= last_done.get(e.partition, -1)
        ]

    def _event(
        self,
        order_id: str,
        state: State,
        order_identity: bytes,
        message: Message,
        kind: str = "",
        reason: str = "",
    ) -> StateEvent:
        member = f" {self.member_id}" if self.member_id else ""
        return StateEvent(
            order_id,
            state,
            order_identity,
            now_ms(),
            f"{self._instance}{member}",
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
            kind,
            reason[:1024],
        )


def _digest(message: Message) -> int:
    """What tells the record at a position from another one there (in this process)."""
    return hash((message.key(), message.value()))
