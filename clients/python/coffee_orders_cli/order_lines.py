"""What ``order --wait processed``, ``get`` and ``watch`` print for a person, and their exit codes.

One line per state. Text a caller or a record chose (an order_id, the consumer's ``processed_by``,
a dead-letter reason, a server message that may quote them) is escaped as the services' logs
escape it: a control character, a line or paragraph separator, a bidi override or another
invisible character is written as ``\\n``, ``\\x1b``, ``\\u202e`` (a backslash as ``\\\\``), so
no reply can end a line, move the cursor or hide text on the terminal. Letters of any script
stay as they are.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime

from coffee_orders_client import OrderState, OrderStatus, PlacedOrder, Placement
from coffee_orders_common.characters import UNSAFE_IN_LOGS, escape_character
from coffee_orders_common.exit_codes import EXIT_DEAD_LETTERED, EXIT_NOT_FINAL, EXIT_OK
from coffee_orders_common.option_help import option_help

from .environment import DEFAULT_PRODUCER_TARGET, PRODUCER_TARGET_ENV

_UNSAFE = re.compile(f"[\\\\{UNSAFE_IN_LOGS}]")


def shown(text: str) -> str:
    """``text`` safe on one terminal line (see the module's docstring)."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text  # nearly all text: nothing to escape
    return _UNSAFE.sub(escape_character, text)


def _when(time: datetime | None) -> str:
    return time.isoformat(timespec="milliseconds") if time is not None else "an unknown time"


def _where(topic: str, partition: int, offset: int) -> str:
    return f"{shown(topic)} partition {partition} offset {offset}"


def placed_line(placed: PlacedOrder) -> str:
    """``order <id> placed: <topic> partition <p> offset <o>`` (what ``order`` always printed)."""
    return f"order {shown(placed.order_id)} placed: " + _where(
        placed.topic, placed.partition, placed.offset
    )


def status_line(status: OrderStatus) -> str:
    """One line for one state of an order."""
    order = f"order {shown(status.order_id)}"
    where = _where(status.topic, status.partition, status.offset)
    if status.state is OrderState.PROCESSED:
        by = f" by {shown(status.processed_by)}" if status.processed_by else ""
        return f"{order} processed at {_when(status.time)}{by}: {where}"
    if status.state is OrderState.DEAD_LETTERED:
        kind = status.error_kind.lower() or "unknown"
        return (
            f"{order} dead-lettered at {_when(status.time)}: {where}: "
            f"{shown(kind)}: {shown(status.reason)}"
        )
    if status.state is OrderState.PENDING:
        return f"{order} pending: {where}, not processed yet"
    if status.state is OrderState.NOT_FOUND:
        return f"{order} not found: never seen within the tracking window"
    return f"{order} in a state this client does not know ({status.to_proto().state})"


def exit_code(status: OrderStatus | None) -> int:
    """0 for PROCESSED, 4 for DEAD_LETTERED, 3 for anything not final (or nothing)."""
    if status is not None and status.state is OrderState.PROCESSED:
        return EXIT_OK
    if status is not None and status.state is OrderState.DEAD_LETTERED:
        return EXIT_DEAD_LETTERED
    return EXIT_NOT_FINAL


def add_order_arguments(parser: argparse.ArgumentParser) -> None:
    """ORDER_ID, ``--partition``/``--offset`` and ``--target``: what ``get`` and ``watch`` share."""
    parser.add_argument("order_id", metavar="ORDER_ID", help="the order_id PlaceOrder returned")
    placement = {
        "--partition": "the partition PlaceOrder gave the order (with --offset, an order not "
        "processed yet is pending rather than not found)",
        "--offset": "the offset PlaceOrder gave the order (with --partition)",
    }
    for flag, text in placement.items():
        parser.add_argument(flag, type=int, default=None, help=option_help(text, default="none"))
    parser.add_argument(
        "--target",
        default=None,
        help=option_help(
            "producer or consumer address (both serve order tracking)",
            env=PRODUCER_TARGET_ENV,
            default=DEFAULT_PRODUCER_TARGET,
        ),
    )
    parser.set_defaults(parser=parser)


def placement_from(args: argparse.Namespace) -> Placement | None:
    """The placement the flags give; ``--partition`` without ``--offset`` is a usage error."""
    if args.partition is None and args.offset is None:
        return None
    if args.partition is None or args.offset is None:
        parser: argparse.ArgumentParser = args.parser
        parser.error("--partition and --offset go together")  # exits with 2
    return Placement(args.partition, args.offset)
