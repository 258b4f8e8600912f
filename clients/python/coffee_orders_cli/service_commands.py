"""``coffee-orders producer`` and ``coffee-orders consumer``: run a service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Literal, get_args, get_origin

from coffee_orders_common.grpc_server import ListenError
from coffee_orders_common.liveness import EXIT_WORKER_FAILED, WorkerFailed
from coffee_orders_common.logs import configure_logging
from coffee_orders_common.metrics import MetricsError
from coffee_orders_common.settings import (
    CONFIG_ENV,
    ServiceSettings,
    SettingsError,
    declared_settings,
    load_settings,
)
from coffee_orders_common.tracing import configure_tracing
from confluent_kafka import KafkaError, KafkaException

EXIT_BAD_SETTINGS = 2


def add_settings_flags(parser: argparse.ArgumentParser, model: type[ServiceSettings]) -> None:
    """A flag for every setting that declares one; --help names each env variable and default."""
    parser.add_argument(
        "--config", default=None, help=f"YAML or TOML config file [env {CONFIG_ENV}]"
    )
    env_only = []
    for declared in declared_settings(model):
        if declared.flag is None:
            env_only.append(
                f"  {declared.env:<34} {declared.help} [default {declared.default_text}]"
            )
            continue
        choices = get_args(declared.field.annotation)
        parser.add_argument(
            declared.flag,
            dest=declared.path,
            metavar=declared.path.rsplit(".", 1)[-1].upper(),
            default=None,
            choices=choices if get_origin(declared.field.annotation) is Literal else None,
            help=f"{declared.help} [env {declared.env}; default {declared.default_text}]",
        )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "settings without a flag (environment or config file):\n" + "\n".join(env_only)


def settings_flags(args: argparse.Namespace, model: type[ServiceSettings]) -> dict[str, Any]:
    """The dotted settings given on the command line (None where a flag was not given)."""
    return {d.path: getattr(args, d.path) for d in declared_settings(model) if d.flag}


def run_service(
    name: str,
    load: Callable[[], ServiceSettings],
    serve: Callable[[Any], Coroutine[Any, Any, None]],
) -> int:
    """Load settings (exit 2 on a bad one), set up logging, serve until SIGTERM/SIGINT.

    Exit 1 when the address cannot be bound, 70 when a worker died or stalled (logged).
    """
    try:
        settings = load()
    except SettingsError as exc:
        print(f"coffee-orders {name}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    configure_logging(settings.log_format, settings.log_level)
    configure_tracing(f"coffee-orders-{name}")
    try:
        asyncio.run(serve(settings))
    except (ListenError, MetricsError) as exc:
        print(f"coffee-orders {name}: error: {exc}", file=sys.stderr)
        return 1
    except WorkerFailed:  # the watchdog has logged which worker and why
        return EXIT_WORKER_FAILED
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is None or error.code() != KafkaError._INVALID_ARG:
            raise
        # librdkafka refused a setting while creating a client (unreadable key, key and
        # certificate that do not match, an unknown SASL mechanism).
        print(f"coffee-orders {name}: error: invalid Kafka setting: {error.str()}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    return 0


def add_producer_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from coffee_orders_producer.settings import ProducerSettings

    parser = subparsers.add_parser("producer", help="run the PlaceOrder gRPC service")
    add_settings_flags(parser, ProducerSettings)
    parser.set_defaults(handler=_run_producer)


def _run_producer(args: argparse.Namespace) -> int:
    from coffee_orders_producer.app import serve
    from coffee_orders_producer.settings import ProducerSettings

    def load() -> ProducerSettings:
        flags = settings_flags(args, ProducerSettings)
        return load_settings(ProducerSettings, flags=flags, config_path=args.config)

    return run_service("producer", load, serve)


def add_consumer_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from coffee_orders_consumer.settings import ConsumerSettings

    parser = subparsers.add_parser(
        "consumer", help="run the consumer daemon and its status gRPC service"
    )
    add_settings_flags(parser, ConsumerSettings)
    parser.set_defaults(handler=_run_consumer)


def _run_consumer(args: argparse.Namespace) -> int:
    from coffee_orders_consumer.app import serve
    from coffee_orders_consumer.settings import ConsumerSettings

    def load() -> ConsumerSettings:
        flags = settings_flags(args, ConsumerSettings)
        return load_settings(ConsumerSettings, flags=flags, config_path=args.config)

    return run_service("consumer", load, serve)
