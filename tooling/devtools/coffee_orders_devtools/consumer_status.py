"""Ask a consumer process for its status over gRPC (the benchmark and the fault run)."""

from __future__ import annotations

import grpc
from coffee.orders.v1 import consumer_status_pb2, consumer_status_pb2_grpc


def status(target: str) -> consumer_status_pb2.GetStatusResponse:
    """GetStatus of the consumer at ``target`` (HOST:PORT, plaintext), within 5 s."""
    with grpc.insecure_channel(target) as channel:
        stub = consumer_status_pb2_grpc.ConsumerStatusServiceStub(channel)
        reply: consumer_status_pb2.GetStatusResponse = stub.GetStatus(
            consumer_status_pb2.GetStatusRequest(), timeout=5
        )
    return reply
