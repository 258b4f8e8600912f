"""Remember the answers to confirmed request_ids, so a repeat is answered without publishing.

Bounded: the oldest entries go first once ``capacity`` is reached. Concurrent repeats of a
request that is still waiting for Kafka share the first call's outcome.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from coffee.orders.v1 import orders_pb2
from coffee_orders_common.validation import Order


@dataclass
class _Entry:
    order: Order
    outcome: asyncio.Future[orders_pb2.PlaceOrderResponse]


class RequestLedger:
    def __init__(self, capacity: int):
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, request_id: str) -> _Entry | None:
        entry = self._entries.get(request_id)
        if entry is not None:
            self._entries.move_to_end(request_id)
        return entry

    def remember(
        self,
        request_id: str,
        order: Order,
        outcome: asyncio.Future[orders_pb2.PlaceOrderResponse],
    ) -> None:
        """Record that ``request_id`` is being published; ``outcome`` settles with its answer.

        A failed outcome is forgotten, so a retry publishes again (with the same order_id).
        """
        if self._capacity == 0:
            return
        self._entries[request_id] = _Entry(order, outcome)
        self._entries.move_to_end(request_id)

        def forget_failure(done: asyncio.Future[orders_pb2.PlaceOrderResponse]) -> None:
            if done.cancelled() or done.exception() is not None:
                entry = self._entries.get(request_id)
                if entry is not None and entry.outcome is done:
                    del self._entries[request_id]

        outcome.add_done_callback(forget_failure)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
