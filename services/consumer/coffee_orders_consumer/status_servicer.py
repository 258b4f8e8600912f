"""coffee.orders.v1.ConsumerStatusService over the daemon's status."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee.orders.v1 import consumer_status_pb2_grpc

from .status import ConsumerStatus

Context = grpc.aio.ServicerContext[Any, Any]


class StatusServicer(consumer_status_pb2_grpc.ConsumerStatusServiceServicer):
    def __init__(self, status: ConsumerStatus, watch_queue: int, max_watchers: int):
        """``watch_queue``: errors kept per WatchErrors stream for a slow reader (the oldest
        are dropped and counted beyond it); ``max_watchers``: WatchErrors streams at once."""
        self._status = status
        self._watch_queue = watch_queue
        self._max_watchers = max_watchers
        self._watchers = 0

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: Context
    ) -> pb.GetStatusResponse:
        return self._status.snapshot()

    async def WatchErrors(
        self, request: pb.WatchErrorsRequest, context: Context
    ) -> AsyncIterator[pb.WatchErrorsResponse]:
        if self._watchers >= self._max_watchers:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._max_watchers} WatchErrors streams are open already; try again later",
            )
        self._watchers += 1
        subscriber = self._status.subscribe(self._watch_queue)
        try:
            # Tell the caller it is subscribed: every error from now on reaches this stream.
            await context.send_initial_metadata(())
            while (next_error := await subscriber.next()) is not None:  # None: daemon stopping
                error, dropped = next_error
                yield pb.WatchErrorsResponse(error=error, dropped=dropped)
        finally:
            self._status.unsubscribe(subscriber)
            self._watchers -= 1
