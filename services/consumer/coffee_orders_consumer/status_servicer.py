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
    def __init__(self, status: ConsumerStatus):
        self._status = status

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: Context
    ) -> pb.GetStatusResponse:
        return self._status.snapshot()

    async def WatchErrors(
        self, request: pb.WatchErrorsRequest, context: Context
    ) -> AsyncIterator[pb.WatchErrorsResponse]:
        subscriber = self._status.subscribe()
        # Tell the caller it is subscribed: every error from now on reaches this stream.
        await context.send_initial_metadata(())
        try:
            while True:
                error = await subscriber.queue.get()
                if error is None:  # the daemon is stopping
                    return
                yield pb.WatchErrorsResponse(error=error)
        finally:
            self._status.unsubscribe(subscriber)
