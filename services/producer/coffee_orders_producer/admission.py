"""Admission: how many orders may wait for Kafka at once, and who holds each place.

``InFlight`` bounds the orders handed to Kafka and not yet answered by their delivery report,
PlaceOrder and PlaceOrders together. Each such order holds a ``Slot``, which has one owner at a
time and is given back once:

- PlaceOrder takes a slot at once (``InFlight.take``), or is refused (``NoRoom``): a full limit
  answers RESOURCE_EXHAUSTED, it does not queue;
- PlaceOrders waits until a part of its batch fits (``InFlight.reserve``) and takes each order's
  slot from that ``Reservation``; the slots its orders did not take go back when the part is
  admitted (orders answered from the request_id ledger, or refused);
- admitting the order owns its slot in a ``with`` block: an order that does not go to Kafka
  gives it back at the end of the block; one that does hands it over (``Slot.hand_over``) to its
  delivery report, which releases it.

``Slots`` counts underneath. asyncio.Semaphore hands out one unit per acquire; a PlaceOrders
batch needs room for all of its orders at once, or S streams each waiting for one free slot
would overshoot the limit by S batches. Waiters are served in arrival order, so a large batch
is not passed over forever by smaller ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Protocol


class Slots:
    """``limit`` slots taken one or many at a time, first come first served."""

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


class NoRoom(Exception):
    """Every in-flight slot is taken."""


class Slot:
    """One order's place among those waiting for Kafka; see the module docstring."""

    def __init__(self, slots: Slots):
        self._slots = slots
        self._held = True
        self._handed_over = False

    def hand_over(self) -> None:
        """The order went to Kafka: its delivery report releases the slot, not this block."""
        self._handed_over = True

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("the slot was released already")
        self._held = False
        self._slots.release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._held and not self._handed_over:
            self.release()


class SlotSource(Protocol):
    def take(self) -> Slot:
        """One slot for one order, or NoRoom."""


class Reservation:
    """Slots waited for together (a part of a PlaceOrders batch), handed out one by one; the
    end of the ``with`` block gives back those not taken."""

    def __init__(self, slots: Slots, count: int):
        self._slots = slots
        self._left = count

    def take(self) -> Slot:
        if not self._left:
            raise NoRoom()
        self._left -= 1
        return Slot(self._slots)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._left:
            self._slots.release(self._left)
            self._left = 0


class InFlight:
    """The bound on orders waiting for their delivery report; see the module docstring."""

    def __init__(self, limit: int):
        self.limit = limit
        self._slots = Slots(limit)

    @property
    def taken(self) -> int:
        """Orders waiting for Kafka now (the in_flight gauge)."""
        return self._slots.taken

    def take(self) -> Slot:
        """A slot now, or NoRoom."""
        if self._slots.full():
            raise NoRoom()
        self._slots.take()
        return Slot(self._slots)

    async def reserve(self, count: int) -> Reservation:
        """Wait until ``count`` slots are free together (after earlier waiters), and hold them."""
        await self._slots.reserve(count)
        return Reservation(self._slots, count)
