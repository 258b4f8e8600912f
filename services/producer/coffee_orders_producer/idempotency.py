"""Remember the answers to confirmed request_ids, so a repeat is answered without publishing.

Bounded: the oldest entries go first once ``capacity`` is reached. Concurrent repeats of a
request that is still waiting for Kafka share the first call's outcome.

Compact on purpose: a confirmed entry is a tuple of strings and the answer's protobuf bytes,
not a future with callbacks and a message object. At the default 100,000 entries the ledger
holds tens of MB instead of well over 100, and the garbage collector has nothing in it to
traverse (tuples of strings and bytes are not tracked), which kept full collections, and the
latency spikes they caused, from growing with the ledger (docs/benchmarks.md, soak).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from coffee.orders.v1 import orders_pb2
from coffee_orders_common.validation import Order

PendingReply = asyncio.Future[orders_pb2.PlaceOrderResponse]  # settles with the confirmed reply
# (customer_name, coffee_type), then the pending reply while in flight or its bytes after
_Entry = tuple[tuple[str, str], PendingReply | bytes]


class RequestReused(Exception):
    """The request_id was used before for a different order."""


class RequestLedger:
    def __init__(self, capacity: int):
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, request_id: str, order: Order) -> PendingReply | None:
        """The outcome of an earlier request with this id (shared while in flight), or None.

        Raises RequestReused when that earlier request was for another order.
        """
        entry = self._entries.get(request_id)
        if entry is None:
            return None
        self._entries.move_to_end(request_id)
        (customer_name, coffee_type), state = entry
        if (customer_name, coffee_type) != (order.customer_name, order.coffee_type):
            raise RequestReused(request_id)
        if isinstance(state, bytes):
            answered: PendingReply = asyncio.get_running_loop().create_future()
            answered.set_result(orders_pb2.PlaceOrderResponse.FromString(state))
            return answered
        return state

    def remember(self, request_id: str, order: Order, outcome: PendingReply) -> None:
        """Record that ``request_id`` is being published; ``outcome`` settles with its answer.

        A failed outcome is forgotten, so a retry publishes again (with the same order_id).
        """
        if self._capacity == 0:
            return
        key = (order.customer_name, order.coffee_type)
        self._entries[request_id] = (key, outcome)
        self._entries.move_to_end(request_id)

        def settled(done: PendingReply) -> None:
            entry = self._entries.get(request_id)
            if entry is None or entry[1] is not done:
                return  # evicted meanwhile, or replaced
            if done.cancelled() or done.exception() is not None:
                del self._entries[request_id]
            else:  # keep only the answer's bytes; the position in the order stays
                self._entries[request_id] = (key, done.result().SerializeToString())

        outcome.add_done_callback(settled)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
