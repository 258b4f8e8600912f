"""``coffee-orders health``: exit 0 when a service reports SERVING (for container health checks)."""

from __future__ import annotations

import argparse
import sys

import grpc
from coffee_orders_common.exit_codes import EXIT_FAILED
from coffee_orders_common.option_help import option_help
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .environment import DEFAULT_PRODUCER_TARGET, PRODUCER_TARGET_ENV, producer_target
from .tls_flags import add_tls_flags, credentials_from


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("health", help="check a service's gRPC health (exit 0: SERVING)")
    parser.add_argument(
        "--target",
        default=None,
        help=option_help(
            "service address", env=PRODUCER_TARGET_ENV, default=DEFAULT_PRODUCER_TARGET
        ),
    )
    parser.add_argument("--service", default="", help='service name (default "": the server)')
    parser.add_argument(
        "--timeout", type=float, default=3.0, help=option_help("deadline in seconds", default=3)
    )
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    credentials = credentials_from(args, "health")
    target = args.target or producer_target()
    channel = (
        grpc.secure_channel(target, credentials)
        if credentials is not None
        else grpc.insecure_channel(target)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as error:
            code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
            print(f"coffee-orders health: {target}: {code}", file=sys.stderr)
            return EXIT_FAILED
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
