"""``coffee-orders order``: place one order from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from coffee_orders_client import OrderClient, RejectedOrder


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("order", help="place one coffee order")
    parser.add_argument("customer_name", help='who it is for, e.g. "John Doe"')
    parser.add_argument("coffee_type", help="what to brew, e.g. Latte")
    parser.add_argument(
        "--address", default="localhost:50051", help="producer address (default localhost:50051)"
    )
    parser.add_argument("--request-id", default=None, help="idempotency key (default: a new UUID)")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with OrderClient(args.address) as client:
        try:
            placed = client.place(
                args.customer_name, args.coffee_type, args.request_id, args.timeout
            )
        except RejectedOrder as rejected:
            print(f"coffee-orders order: {rejected}", file=sys.stderr)
            for name, problem in rejected.field_violations.items():
                print(f"  {name}: {problem}", file=sys.stderr)
            return 1
    reply = {
        "order_id": placed.order_id,
        "topic": placed.topic,
        "partition": placed.partition,
        "offset": placed.offset,
        "timestamp": placed.timestamp.isoformat(),
    }
    print(json.dumps(reply, indent=2))
    return 0
