"""``coffee-orders order``: place one order from the command line.

``--wait processed`` answers once the consumer group processed the order (exit 0), and otherwise
still says where Kafka stored it: exit 3 when the deadline came first, 4 when the order was
dead-lettered (order_lines.py has the codes).
"""

from __future__ import annotations

import argparse
import sys

from coffee_orders_client import (
    CoffeeOrdersClient,
    OrderDeadLettered,
    OrderNotProcessedInTime,
    PlacedButNotProcessed,
    PlacedOrder,
    RejectedOrder,
    WaitFor,
)
from coffee_orders_common.exit_codes import EXIT_DEAD_LETTERED, EXIT_FAILED, EXIT_NOT_FINAL, EXIT_OK
from coffee_orders_common.option_help import option_help

from .environment import DEFAULT_PRODUCER_TARGET, PRODUCER_TARGET_ENV, producer_target
from .json_output import message_json
from .order_lines import (
    placed_line,
    shown,
    status_line,
)
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
        "--wait",
        choices=[wait.value for wait in WaitFor],
        default=WaitFor.CONFIRMED.value,
        help=option_help(
            "answer once Kafka confirmed the order, or once the consumer group processed it "
            "(exit 3: not processed before the deadline; 4: dead-lettered)",
            default=WaitFor.CONFIRMED.value,
        ),
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
                args.customer, args.coffee, args.request_id, args.timeout, wait_for=args.wait
            )
        except PlacedButNotProcessed as not_processed:
            return _placed_but_not_processed(not_processed, args.json)
        except RejectedOrder as rejected:
            print(f"coffee-orders order: {shown(str(rejected))}", file=sys.stderr)
            return EXIT_FAILED
    _print_placed(placed, args.json)
    return EXIT_OK


def _print_placed(placed: PlacedOrder, as_json: bool) -> None:
    if as_json:
        print(message_json(placed.to_proto()), flush=True)
        return
    print(placed_line(placed))
    if placed.processing is not None:
        print(status_line(placed.processing))
    sys.stdout.flush()


def _placed_but_not_processed(error: PlacedButNotProcessed, as_json: bool) -> int:
    """Kafka has the order, yet it was not processed as asked: say where it is, and why not."""
    _print_placed(error.placed, as_json)
    line = f"coffee-orders order: {shown(str(error))}"
    if isinstance(error, OrderNotProcessedInTime):
        follow = f"coffee-orders watch {shown(error.order_id)} --partition {error.partition} "
        print(f"{line} (follow it: {follow}--offset {error.offset})", file=sys.stderr)
        return EXIT_NOT_FINAL
    print(line, file=sys.stderr)
    return EXIT_DEAD_LETTERED if isinstance(error, OrderDeadLettered) else EXIT_FAILED
