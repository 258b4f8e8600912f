"""``coffee-orders status``: the consumer daemon's GetStatus, for a person or as JSON."""

from __future__ import annotations

import argparse
import sys

import grpc
from coffee.orders.v1 import consumer_status_pb2 as pb
from coffee.orders.v1 import consumer_status_pb2_grpc
from google.protobuf.json_format import MessageToJson
from google.protobuf.timestamp_pb2 import Timestamp


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="show the consumer daemon's status")
    parser.add_argument(
        "--target", default="localhost:50052", help="consumer address (default localhost:50052)"
    )
    parser.add_argument("--json", action="store_true", help="print the GetStatus reply as JSON")
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")
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


def run(args: argparse.Namespace) -> int:
    with grpc.insecure_channel(args.target) as channel:
        stub = consumer_status_pb2_grpc.ConsumerStatusServiceStub(channel)
        try:
            status = stub.GetStatus(pb.GetStatusRequest(), timeout=args.timeout)
        except grpc.RpcError as error:
            code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
            print(f"coffee-orders status: {args.target}: {code}", file=sys.stderr)
            return 1
    if args.json:
        print(MessageToJson(status))
    else:
        print(render(status))
    return 0
