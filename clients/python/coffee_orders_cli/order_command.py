"""``coffee-orders order``: place one order from the command line."""

from __future__ import annotations

import argparse
import sys

from coffee_orders_client import CoffeeOrdersClient, RejectedOrder
from coffee_orders_common.option_help import option_help

from .environment import DEFAULT_PRODUCER_TARGET, PRODUCER_TARGET_ENV, producer_target
from .json_output import message_json
from .tls_flags import add_tls_flags, credentials_from


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("order", help="place one coffee order")
    parser.add_argument("--customer", required=True, help='who it is for, e.g. "John Doe"')
    parser.add_argument("--coffee", required=True, help="what to brew, e.g. Latte")
    parser.add_argument(
        "--target",
        default=None,
        help=option_help(
            "producer address", env=PRODUCER_TARGET_ENV, default=DEFAULT_PRODUCER_TARGET
        ),
    )
    parser.add_argument(
        "--request-id", default=None, help=option_help("idempotency key", default="a new UUID")
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help=option_help("deadline in seconds", default=10)
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the PlaceOrder reply as JSON, exactly as grpcurl -emit-defaults does",
    )
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    credentials = credentials_from(args, "order")
    target = args.target or producer_target()
    with CoffeeOrdersClient(orders_target=target, credentials=credentials) as client:
        try:
            placed = client.place_order(
                args.customer, args.coffee, args.request_id, timeout=args.timeout
            )
        except RejectedOrder as rejected:
            print(f"coffee-orders order: {rejected}", file=sys.stderr)
            return 1
    if args.json:
        print(message_json(placed.to_proto()))
    else:
        print(
            f"order {placed.order_id} placed: {placed.topic} partition {placed.partition} "
            f"offset {placed.offset}"
        )
    return 0
