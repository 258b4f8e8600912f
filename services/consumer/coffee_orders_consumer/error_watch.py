"""One WatchErrors subscriber: a bounded queue of errors between the consume thread and its stream.

A subscriber that reads more slowly than errors happen (or not at all) must not make the daemon
keep every error for it: once ``capacity`` errors wait, the oldest is dropped and counted, and
the count travels with the next error the subscriber gets (``WatchErrorsResponse.dropped``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from coffee.orders.v1 import consumer_status_pb2 as pb


class ErrorWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int):
        self._loop = loop
        self._lock = threading.Lock()
        self._waiting: deque[pb.ConsumerError] = deque()
        self._capacity = capacity
        self._dropped = 0
        self._closed = False
        self._wake = asyncio.Event()
        self._wake_scheduled = False  # one wake-up on the loop at a time, not one per error

    def offer(self, error: pb.ConsumerError) -> None:
        """Queue ``error`` (from any thread), dropping the oldest waiting one when full."""
        with self._lock:
            if len(self._waiting) >= self._capacity:
                self._waiting.popleft()
                self._dropped += 1
            self._waiting.append(error)
            self._schedule_wake()

    def close(self) -> None:
        """End the stream (from any thread) once the errors already queued are taken."""
        with self._lock:
            self._closed = True
            self._schedule_wake()

    def _schedule_wake(self) -> None:  # holding the lock
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._loop.call_soon_threadsafe(self._wake.set)

    async def next(self) -> tuple[pb.ConsumerError, int] | None:
        """The next error and how many were dropped just before it; None once closed."""
        while True:
            with self._lock:
                if self._waiting:
                    dropped, self._dropped = self._dropped, 0
                    return self._waiting.popleft(), dropped
                if self._closed:
                    return None
                self._wake_scheduled = False
                self._wake.clear()
            await self._wake.wait()
