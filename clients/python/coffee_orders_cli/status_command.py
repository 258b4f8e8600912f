"""``coffee-orders status``: the consumer daemon's GetStatus, for a person or as JSON."""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee_orders_client import CoffeeOrdersClient
from google.protobuf.json_format import MessageToJson
from google.protobuf.timestamp_pb2 import Timestamp

from .tls_flags import add_tls_flags, credentials_from


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="show the consumer daemon's status")
    parser.add_argument(
        "--target", default="localhost:50052", help="consumer address (default localhost:50052)"
    )
    parser.add_argument("--json", action="store_true", help="print the GetStatus reply as JSON")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
    parser.add_argument(
        "--watch", action="store_true", help="stream each new error (WatchErrors) until Ctrl-C"
    )
    add_tls_flags(parser)
    parser.set_defaults(handler=run)


def _time(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "never"
    return stamp.ToDatetime().astimezone().isoformat(timespec="seconds")


def _name(enum: str, prefix: str) -> str:
    return enum.removeprefix(prefix).lower()


def render(status: pb.GetStatusResponse) -> str:
    counters = status.counters
    lines = [
        f"state:          {_name(pb.ConsumerState.Name(status.state), 'CONSUMER_STATE_')}",
        f"group / topic:  {status.group_id} / {status.topic} (dead letters: "
        f"{status.dead_letter_topic})",
        f"started:        {_time(status.start_time)}",
        f"last order:     {_time(status.last_order_time)}",
        f"processed:      {counters.processed}",
        f"duplicates:     {counters.duplicates_skipped} skipped",
        f"errors:         {counters.errors_total} total, {counters.dead_lettered} dead-lettered",
    ]
    for count in counters.errors_by_kind:
        lines.append(f"  {_name(pb.ErrorKind.Name(count.kind), 'ERROR_KIND_'):<20} {count.count}")
    lines.append("partitions:     partition  committed  high-watermark  lag")
    for part in status.partitions:
        lines.append(
            f"                {part.partition:>9}  {part.committed_offset:>9}  "
            f"{part.high_watermark:>14}  {part.lag:>3}"
        )
    if status.recent_errors:
        lines.append("recent errors:")
    for error in status.recent_errors[-10:]:
        where = f" {error.topic}/{error.partition}@{error.offset}" if error.partition >= 0 else ""
        kind = _name(pb.ErrorKind.Name(error.kind), "ERROR_KIND_")
        lines.append(f"  {_time(error.time)} {kind}{where}: {error.message}")
    return "\n".join(lines)


def _error_line(error: pb.ConsumerError) -> str:
    where = f" {error.topic}/{error.partition}@{error.offset}" if error.partition >= 0 else ""
    kind = _name(pb.ErrorKind.Name(error.kind), "ERROR_KIND_")
    return f"{_time(error.time)} {kind}{where}: {error.message}"


def _dropped_line(dropped: int, as_json: bool) -> str:
    if as_json:
        return json.dumps({"dropped": dropped})
    return f"... {dropped} errors dropped here: this watcher read more slowly than they happened"


def _watch(client: CoffeeOrdersClient, as_json: bool) -> int:
    try:
        for item in client.watch_errors_with_dropped():
            if item.dropped:
                print(_dropped_line(item.dropped, as_json), flush=True)
            error = item.error
            line = MessageToJson(error, indent=None) if as_json else _error_line(error)
            print(line, flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


def run(args: argparse.Namespace) -> int:
    credentials = credentials_from(args, "status")
    with CoffeeOrdersClient(status_target=args.target, credentials=credentials) as client:
        try:
            if args.watch:
                return _watch(client, args.json)
            status = client.status(timeout=args.timeout)
        except grpc.RpcError as error:
            code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
            print(f"coffee-orders status: {args.target}: {code}", file=sys.stderr)
            return 1
    print(MessageToJson(status) if args.json else render(status))
    return 0
