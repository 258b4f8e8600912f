"""Follow a service through streams (Health/Watch, WatchErrors): a status that lasts only a
moment is seen anyway, which polling could miss."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
from coffee.orders.v1 import consumer_status_pb2 as status_pb
from coffee.orders.v1 import consumer_status_pb2_grpc
from coffee_orders_devtools.waiting import async_wait_until
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthWatch:
    """Every status one ``Health/Watch`` stream sends for ``service``, with its arrival time."""

    def __init__(self, channel: grpc.aio.Channel, service: str):
        self.service = service
        self.seen: list[tuple[float, int]] = []
        request = health_pb2.HealthCheckRequest(service=service)
        self._call = health_pb2_grpc.HealthStub(channel).Watch(request)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for reply in self._call:
                self.seen.append((time.monotonic(), reply.status))

    def statuses(self) -> list[int]:
        return [status for _, status in self.seen]

    async def reaches(self, status: int, within: float, since: float = 0.0) -> float:
        """Wait until the stream says ``status`` (at or after ``since``); return when it did."""

        async def arrived() -> float | None:
            return next((t for t, s in self.seen if s == status and t >= since), None)

        name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        return await async_wait_until(arrived, within, f"{self.service or '(server)'} {name}")

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


class ErrorWatch:
    """The errors a consumer's ``WatchErrors`` stream delivers, from the moment it subscribed."""

    def __init__(self, channel: grpc.aio.Channel):
        self.errors: list[status_pb.ConsumerError] = []
        stub = consumer_status_pb2_grpc.ConsumerStatusServiceStub(channel)
        self._call = stub.WatchErrors(status_pb.WatchErrorsRequest())
        self._reader: asyncio.Task[None] | None = None

    async def subscribed(self) -> ErrorWatch:
        await self._call.initial_metadata()  # sent once the server has subscribed the stream
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for reply in self._call:
                self.errors.append(reply.error)

    async def first(self, kind: int, within: float) -> status_pb.ConsumerError:
        async def arrived() -> status_pb.ConsumerError | None:
            return next((error for error in self.errors if error.kind == kind), None)

        return await async_wait_until(arrived, within, status_pb.ErrorKind.Name(kind))

    async def close(self) -> None:
        self._call.cancel()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
