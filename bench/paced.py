"""PlaceOrder at a fixed rate from this process, remembering when each order was sent.

Each call carries a request_id, so its order_id is known in advance (wire.order_id_for) and the
consumer's log line for it can be matched: that gives end-to-end latency.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from coffee.orders.v1 import orders_pb2, orders_pb2_grpc
from coffee_orders_common import wire


@dataclass
class PacedCall:
    order_id: str
    sent_at: float  # time.time(), comparable with the consumer's log timestamps
    latency_s: float = -1.0
    code: str = ""


@dataclass
class PacedRun:
    calls: list[PacedCall] = field(default_factory=list)

    def ok(self) -> list[PacedCall]:
        return [c for c in self.calls if c.code == "OK"]


async def place_at_rate(target: str, rate: float, seconds: float, tag: str) -> PacedRun:
    """Start a PlaceOrder every 1/rate s for ``seconds``, never waiting for answers to go on."""
    run = PacedRun()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)

        async def one(index: int) -> None:
            request_id = f"{tag}-{index}"
            call = PacedCall(wire.order_id_for(request_id), time.time())
            run.calls.append(call)
            started = time.perf_counter()
            request = orders_pb2.PlaceOrderRequest(
                customer_name=f"guest {index}", coffee_type="Latte", request_id=request_id
            )
            try:
                await stub.PlaceOrder(request, timeout=20)
                call.code = "OK"
            except grpc.aio.AioRpcError as error:
                call.code = error.code().name
            call.latency_s = time.perf_counter() - started

        tasks = []
        began = time.perf_counter()
        total = int(rate * seconds)
        for index in range(total):
            delay = began + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    return run
