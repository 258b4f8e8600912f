"""The producer's own runner, behind ``coffee-orders producer``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coffee_orders_common.runner import Serve, add_service_arguments, service_main

from .settings import ProducerSettings

HELP = "run the PlaceOrder gRPC service"


def _serve() -> Serve:
    from .workers import serve  # the producer itself, or a supervisor of --workers N

    return serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_service_arguments(parser, "producer", ProducerSettings, _serve)


def main(argv: Sequence[str] | None = None) -> int:
    return service_main("producer", HELP, ProducerSettings, _serve, argv)


if __name__ == "__main__":
    sys.exit(main())
