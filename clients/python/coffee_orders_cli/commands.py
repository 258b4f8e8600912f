"""The ``coffee-orders`` argument parser: one subcommand per module."""

from __future__ import annotations

import argparse

from . import (
    dev,
    health_command,
    kafka_commands,
    order_command,
    service_commands,
    status_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coffee-orders",
        description="Coffee orders over gRPC and Apache Kafka: services, client and local tools.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    kafka_commands.add_parser(subparsers)
    dev.add_parser(subparsers)
    service_commands.add_producer_parser(subparsers)
    order_command.add_parser(subparsers)
    service_commands.add_consumer_parser(subparsers)
    status_command.add_parser(subparsers)
    health_command.add_parser(subparsers)
    return parser
