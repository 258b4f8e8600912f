"""``coffee-orders status``: the consumer daemon's GetStatus, for a person or as JSON.

``--watch`` streams WatchErrors on asyncio: Ctrl-C cancels the stream at any moment and the
channel closes (no KeyboardInterrupt lands inside grpc), then the command exits with 130.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC

import grpc
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_client import AsyncCoffeeOrdersClient, CoffeeOrdersClient
from coffee_orders_common.exit_codes import EXIT_FAILED
from coffee_orders_common.option_help import option_help
from google.protobuf.timestamp_pb2 import Timestamp

from .environment import CONSUMER_TARGET_ENV, DEFAULT_CONSUMER_TARGET, consumer_target
from .json_output import message_json
from .tls_flags import add_tls_flags, credentials_from


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="show the consumer daemon's status")
    parser.add_argument(
        "--target",
        default=None,
        help=option_help(
            "consumer address", env=CONSUMER_TARGET_ENV, default=DEFAULT_CONSUMER_TARGET
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the reply as JSON, exactly as grpcurl -emit-defaults does "
        "(with --watch: one WatchErrors reply a line)",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help=option_help("deadline in seconds", default=5)
    )
    parser.add_argument(
        "--watch", action="store_true", help="stream each new error (WatchErrors) until Ctrl-C"
    )
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


def _time(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "never"
    return stamp.ToDatetime(tzinfo=UTC).astimezone().isoformat(timespec="seconds")


def _name(enum: str, prefix: str) -> str:
    return enum.removeprefix(prefix).lower()


def render(status: pb.GetStatusResponse) -> str:
    counters = status.counters
    lines = [
        f"state:          {_name(pb.ConsumerState.Name(status.state), 'CONSUMER_STATE_')}",
        f"group / topic:  {status.group_id} / {status.topic} (dead letters: "
        f"{status.dead_letter_topic})",
        f"membership:     {_membership(status.membership)}",
        f"started:        {_time(status.start_time)}",
        f"last order:     {_time(status.last_order_time)}",
        f"processed:      {counters.processed}",
        f"duplicates:     {counters.duplicates_skipped} skipped",
        f"errors:         {counters.errors_total} total, {counters.dead_lettered} dead-lettered",
    ]
    for count in counters.errors_by_kind:
        lines.append(f"  {_name(pb.ErrorKind.Name(count.kind), 'ERROR_KIND_'):<20} {count.count}")
    lines.append("partitions:     partition  committed  high-watermark  lag  lag-seconds")
    for part in status.partitions:
        lines.append(
            f"                {part.partition:>9}  {part.committed_offset:>9}  "
            f"{part.high_watermark:>14}  {part.lag:>3}  {part.lag_seconds:>11.1f}"
        )
    if status.recent_errors:
        lines.append("recent errors:")
    for error in status.recent_errors[-10:]:
        where = f" {error.topic}/{error.partition}@{error.offset}" if error.partition >= 0 else ""
        kind = _name(pb.ErrorKind.Name(error.kind), "ERROR_KIND_")
        lines.append(f"  {_time(error.time)} {kind}{where}: {error.message}")
    return "\n".join(lines)


def _membership(membership: pb.Membership) -> str:
    state = _name(pb.MembershipState.Name(membership.state), "MEMBERSHIP_STATE_")
    text = f"{state} since {_time(membership.since)}: {membership.reason}"
    return f"{text} ({membership.rejoins} rejoins)" if membership.rejoins else text


def _error_line(error: pb.ConsumerError) -> str:
    where = f" {error.topic}/{error.partition}@{error.offset}" if error.partition >= 0 else ""
    kind = _name(pb.ErrorKind.Name(error.kind), "ERROR_KIND_")
    return f"{_time(error.time)} {kind}{where}: {error.message}"


def _dropped_line(dropped: int) -> str:
    return f"... {dropped} errors dropped here: this watcher read more slowly than they happened"


def _unreachable(target: str, error: grpc.RpcError) -> int:
    code = error.code().name if isinstance(error, grpc.Call | grpc.aio.AioRpcError) else "UNKNOWN"
    print(f"coffee-orders status: {target}: {code}", file=sys.stderr)
    return EXIT_FAILED


async def _watch(
    target: str, credentials: grpc.ChannelCredentials | None, as_json: bool, deadline_s: float
) -> int:
    """Say what is watched once the daemon has subscribed us, then print each new error."""
    async with AsyncCoffeeOrdersClient(status_target=target, credentials=credentials) as client:
        try:
            status = await client.status(timeout=deadline_s)
            call = client.watch_errors_call()
            await call.initial_metadata()  # sent once the daemon has subscribed this stream
            print(
                f"watching new errors of consumer group {status.group_id} on {status.topic} at "
                f"{target} ({status.counters.errors_total} so far); Ctrl-C stops",
                file=sys.stderr,
                flush=True,
            )
            async for reply in call:
                if reply.dropped and not as_json:  # in JSON, the reply's own "dropped" says it
                    print(_dropped_line(reply.dropped), flush=True)
                line = message_json(reply, one_line=True) if as_json else _error_line(reply.error)
                print(line, flush=True)
        except grpc.aio.AioRpcError as error:
            return _unreachable(target, error)
    print(
        f"coffee-orders status: {target} ended the stream (the consumer stopped)", file=sys.stderr
    )
    return 0


def run(args: argparse.Namespace) -> int:
    target = args.target or consumer_target()
    credentials = credentials_from(args, "status")
    if args.watch:
        return asyncio.run(_watch(target, credentials, args.json, args.timeout))
    with CoffeeOrdersClient(status_target=target, credentials=credentials) as client:
        try:
            status = client.status(timeout=args.timeout)
        except grpc.RpcError as error:
            return _unreachable(target, error)
    print(message_json(status) if args.json else render(status))
    return 0
