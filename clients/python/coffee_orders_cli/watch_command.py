"""``coffee-orders watch ORDER_ID``: follow an order to a final state (WatchOrder).

Prints the state now, then each change, one line each (``--json``: each WatchOrder reply as
grpcurl -emit-defaults prints a stream's messages). Exit 0 once processed, 4 once dead-lettered,
3 when the deadline (``--timeout``) passes first, 1 when the call fails. The stream runs on
asyncio, as ``status --watch`` does: Ctrl-C cancels it at any moment (exit 130).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from coffee.orders.v1 import order_tracking_pb2
from coffee_orders_client import (
    AsyncCoffeeOrdersClient,
    OrderStatus,
    Placement,
    RejectedOrder,
    WatchDeadlineExceeded,
)
from coffee_orders_common.exit_codes import EXIT_FAILED, EXIT_NOT_FINAL
from coffee_orders_common.option_help import option_help

from .environment import producer_target
from .json_output import message_json
from .order_lines import (
    add_order_arguments,
    exit_code,
    placement_from,
    shown,
    status_line,
)
from .tls_flags import add_tls_flags, credentials_from


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "watch", help="follow an order until it is processed or dead-lettered (or the deadline)"
    )
    add_order_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        help=option_help("deadline in seconds (exit 3 when it passes first)", default=60),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each WatchOrder reply as JSON, exactly as grpcurl -emit-defaults does",
    )
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


async def _watch(
    target: str,
    credentials: grpc.ChannelCredentials | None,
    order_id: str,
    placement: Placement | None,
    timeout_s: float,
    as_json: bool,
) -> int:
    last: OrderStatus | None = None
    async with AsyncCoffeeOrdersClient(orders_target=target, credentials=credentials) as client:
        try:
            async for status in client.watch_order(order_id, placement, timeout=timeout_s):
                last = status
                if as_json:
                    reply = order_tracking_pb2.WatchOrderResponse(order=status.to_proto())
                    print(message_json(reply), flush=True)
                else:
                    print(status_line(status), flush=True)
        except WatchDeadlineExceeded as late:
            print(f"coffee-orders watch: {target}: {shown(str(late))}", file=sys.stderr)
            return EXIT_NOT_FINAL
        except RejectedOrder as rejected:
            print(f"coffee-orders watch: {target}: {shown(str(rejected))}", file=sys.stderr)
            return EXIT_FAILED
    if last is None or not last.final:
        print(
            f"coffee-orders watch: {target} ended the stream before a final state",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return exit_code(last)


def run(args: argparse.Namespace) -> int:
    placement = placement_from(args)
    credentials = credentials_from(args, "watch")
    target = args.target or producer_target()
    return asyncio.run(
        _watch(target, credentials, args.order_id, placement, args.timeout, args.json)
    )
