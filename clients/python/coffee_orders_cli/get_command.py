"""``coffee-orders get ORDER_ID``: what happened to an order (OrderTrackingService/GetOrder).

Exit 0 whatever the state (processed, dead-lettered, pending, not found: the line or the JSON
says which), 1 when the call fails. ``watch`` is the command whose exit code follows the state.
"""

from __future__ import annotations

import argparse
import sys

from coffee.orders.v1 import order_tracking_pb2
from coffee_orders_client import CoffeeOrdersClient, RejectedOrder
from coffee_orders_common.exit_codes import EXIT_FAILED, EXIT_OK
from coffee_orders_common.option_help import option_help

from .environment import producer_target
from .json_output import message_json
from .order_lines import (
    add_order_arguments,
    placement_from,
    shown,
    status_line,
)
from .tls_flags import add_tls_flags, credentials_from


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "get", help="show what happened to an order (processed, dead-lettered, pending, not found)"
    )
    add_order_arguments(parser)
    parser.add_argument(
        "--timeout", type=float, default=5.0, help=option_help("deadline in seconds", default=5)
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the GetOrder reply as JSON, exactly as grpcurl -emit-defaults does",
    )
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    placement = placement_from(args)
    credentials = credentials_from(args, "get")
    target = args.target or producer_target()
    with CoffeeOrdersClient(orders_target=target, credentials=credentials) as client:
        try:
            status = client.get_order(args.order_id, placement, timeout=args.timeout)
        except RejectedOrder as rejected:
            print(f"coffee-orders get: {target}: {shown(str(rejected))}", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        print(message_json(order_tracking_pb2.GetOrderResponse(order=status.to_proto())))
    else:
        print(status_line(status))
    return EXIT_OK
