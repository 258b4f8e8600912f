"""``coffee-orders order``: place one order from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from coffee_orders_client import CoffeeOrdersClient, RejectedOrder

from .tls_flags import add_tls_flags, credentials_from


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("order", help="place one coffee order")
    parser.add_argument("--customer", required=True, help='who it is for, e.g. "John Doe"')
    parser.add_argument("--coffee", required=True, help="what to brew, e.g. Latte")
    parser.add_argument(
        "--target", default="localhost:50051", help="producer address (default localhost:50051)"
    )
    parser.add_argument("--request-id", default=None, help="idempotency key (default: a new UUID)")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    credentials = credentials_from(args, "order")
    with CoffeeOrdersClient(orders_target=args.target, credentials=credentials) as client:
        try:
            placed = client.place_order(
                args.customer, args.coffee, args.request_id, timeout=args.timeout
            )
        except RejectedOrder as rejected:
            print(f"coffee-orders order: {rejected}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(placed.as_dict(), indent=2))
    else:
        print(
            f"order {placed.order_id} placed: {placed.topic} partition {placed.partition} "
            f"offset {placed.offset}"
        )
    return 0
