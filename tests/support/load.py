"""Drive PlaceOrder from many callers without client retries, and account for every order."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_client import AsyncCoffeeOrdersClient, RejectedOrder

from tests.support.kafka_io import consume_all, watermarks


@dataclass
class LoadOutcome:
    sent: int = 0
    acknowledged: dict[str, tuple[int, int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    error_times: list[float] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)
    rejection_latencies: dict[str, list[float]] = field(default_factory=dict)

    def acknowledged_after(self, moment: float) -> int:
        return sum(1 for t in self.ok_times if t > moment)

    def recovery_seconds(self, fault_at: float) -> float:
        """From the fault to the first OK after the last error that followed it."""
        errors_after = [t for t in self.error_times if t >= fault_at]
        since = max(errors_after) if errors_after else fault_at
        later_ok = [t for t in self.ok_times if t > since]
        return round((min(later_ok) if later_ok else float("nan")) - fault_at, 2)


async def drive(
    address: str,
    callers: int,
    until: asyncio.Event,
    outcome: LoadOutcome,
    prefix: str,
    deadline_s: float = 10.0,
    per_caller: int | None = None,
) -> None:
    """Each caller places orders one after another until ``until`` is set (or ``per_caller``)."""
    options = [("grpc.enable_retries", 0)]  # count every failure; no hidden retries
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def caller(number: int) -> None:
            placed = 0
            while not until.is_set() and (per_caller is None or placed < per_caller):
                placed += 1
                outcome.sent += 1
                request = orders_pb2.PlaceOrderRequest(
                    customer_name=f"Caller {number}",
                    coffee_type="Latte",
                    request_id=f"{prefix}-{number}-{placed}",
                )
                started = time.monotonic()
                try:
                    reply = await stub.PlaceOrder(request, timeout=deadline_s)
                except grpc.aio.AioRpcError as error:
                    now = time.monotonic()
                    code = error.code().name
                    outcome.errors[code] += 1
                    outcome.error_times.append(now)
                    outcome.rejection_latencies.setdefault(code, []).append(now - started)
                    await asyncio.sleep(0.02)  # a failing caller backs off a little
                else:
                    outcome.acknowledged[reply.order_id] = (reply.partition, reply.offset)
                    outcome.ok_times.append(time.monotonic())

        await asyncio.gather(*(caller(n) for n in range(callers)))


def topic_keys(bootstrap: str, topic: str) -> list[str]:
    """Every key on the topic, read from the start by an independent consumer."""
    total = sum(high - low for low, high in watermarks(bootstrap, topic))
    messages = consume_all(bootstrap, topic, total, timeout=60)
    assert len(messages) == total, f"read {len(messages)} of {total} messages"
    return [(m.key() or b"").decode() for m in messages]


@dataclass
class PacedOutcome:
    """Orders placed at a fixed rate through the Python client (its service config retries)."""

    sent: int = 0
    confirmed: dict[str, float] = field(default_factory=dict)  # order_id -> seconds to answer
    failed: Counter[str] = field(default_factory=Counter)
    confirmed_at: list[float] = field(default_factory=list)

    def confirmed_after(self, moment: float) -> int:
        return sum(1 for t in self.confirmed_at if t > moment)


async def place_at_rate(
    client: AsyncCoffeeOrdersClient,
    rate: float,
    until: asyncio.Event,
    outcome: PacedOutcome,
    prefix: str,
) -> None:
    """Start one PlaceOrder every 1/rate s until ``until`` is set, never waiting for an answer
    to start the next; then wait for all of them. A call that fails after the client's retries
    is counted by its final status code."""

    async def one(number: int) -> None:
        started = time.monotonic()
        try:
            placed = await client.place_order(f"Guest {number}", "Latte", f"{prefix}-{number}")
        except RejectedOrder as rejected:
            outcome.failed[rejected.code.name] += 1
        else:
            outcome.confirmed[placed.order_id] = time.monotonic() - started
            outcome.confirmed_at.append(time.monotonic())

    calls: list[asyncio.Task[None]] = []
    began = time.monotonic()
    while not until.is_set():
        calls.append(asyncio.create_task(one(outcome.sent)))
        outcome.sent += 1
        delay = began + outcome.sent / rate - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), delay)
    await asyncio.gather(*calls)
