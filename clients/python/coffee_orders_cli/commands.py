"""The ``coffee-orders`` argument parser: each subcommand comes from the package that owns it.

The services own their runners, the local Kafka and the dev supervisor are tooling; the client
commands (``order``, ``get``, ``watch``, ``status``, ``health``) live here.
"""

from __future__ import annotations

import argparse

from coffee_orders_consumer import main as consumer_main
from coffee_orders_devtools import dev
from coffee_orders_localkafka import cli as kafka_cli
from coffee_orders_producer import main as producer_main

from . import get_command, health_command, order_command, status_command, watch_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coffee-orders",
        description="Coffee orders over gRPC and Apache Kafka: services, client and local tools.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    kafka_cli.add_parser(subparsers)
    dev.add_parser(subparsers)
    producer_main.add_arguments(subparsers.add_parser("producer", help=producer_main.HELP))
    order_command.add_parser(subparsers)
    get_command.add_parser(subparsers)
    watch_command.add_parser(subparsers)
    consumer_main.add_arguments(subparsers.add_parser("consumer", help=consumer_main.HELP))
    status_command.add_parser(subparsers)
    health_command.add_parser(subparsers)
    return parser
