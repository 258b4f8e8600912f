"""The producer's own runner, behind ``coffee-orders producer``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coffee_orders_common.runner import add_settings_flags, run_service, settings_flags
from coffee_orders_common.settings import load_settings

from .settings import ProducerSettings

HELP = "run the PlaceOrder gRPC service"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ProducerSettings)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .app import serve  # grpc and Kafka load only when the service runs

    def load() -> ProducerSettings:
        flags = settings_flags(args, ProducerSettings)
        return load_settings(ProducerSettings, flags=flags, config_path=args.config)

    return run_service("producer", load, serve)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coffee-orders producer", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
