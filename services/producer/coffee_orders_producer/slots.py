"""A limited number of slots that callers take one or many at a time, first come first served.

asyncio.Semaphore hands out one unit per acquire; a PlaceOrders batch needs room for all of its
orders at once, or S streams each waiting for one free slot would overshoot the limit by S
batches. Waiters are served in arrival order, so a large batch is not passed over forever by
smaller ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Slots:
    def __init__(self, limit: int):
        self.limit = limit
        self.taken = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def full(self) -> bool:
        return self.taken >= self.limit

    def take(self, count: int = 1) -> None:
        """Take ``count`` slots now; the caller has checked that there is room."""
        self.taken += count

    async def reserve(self, count: int) -> None:
        """Wait until ``count`` slots are free together (after earlier waiters), and take them."""
        if count > self.limit:
            raise ValueError(f"cannot reserve {count} of {self.limit} slots")
        if not self._waiters and self.taken + count <= self.limit:
            self.taken += count
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (count, granted)
        self._waiters.append(entry)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(count)  # granted just as the waiter was cancelled
            else:
                with contextlib.suppress(ValueError):  # _grant may have dropped it already
                    self._waiters.remove(entry)
                self._grant()  # the head may have left: the next waiter may fit now
            raise

    def release(self, count: int = 1) -> None:
        self.taken -= count
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            count, granted = self._waiters[0]
            if granted.done():  # its waiter was cancelled
                self._waiters.popleft()
                continue
            if self.taken + count > self.limit:
                return
            self._waiters.popleft()
            self.taken += count
            granted.set_result(None)
