"""Wait for a condition with a bound, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = 30.0,
    message: str = "condition",
    interval: float = 0.05,
) -> T:
    """Return the first truthy value of ``condition()``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = condition()
    while last is None or not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")
        time.sleep(interval)
        last = condition()
    return last


async def async_wait_until(
    condition: Callable[[], Awaitable[T | None]], within: float = 30.0, message: str = "condition"
) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value is not None and value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {message}")
        await asyncio.sleep(0.05)
