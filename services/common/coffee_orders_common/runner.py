"""What both services' runners share: flags from the declared settings, start-up, exit codes.

Each service owns its runner (``coffee_orders_producer.main``, ``coffee_orders_consumer.main``);
``coffee-orders producer|consumer`` dispatches to them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, get_args, get_origin

from confluent_kafka import KafkaError, KafkaException

from .exit_codes import EXIT_BAD_SETTINGS, EXIT_FAILED, EXIT_OK, EXIT_WORKER_FAILED
from .grpc_server import ListenError
from .kafka_errors import error_of
from .liveness import WorkerFailed
from .logs import configure_logging
from .metrics import MetricsError
from .setting_fields import declared_settings
from .settings import CONFIG_ENV, ServiceSettings, SettingsError, load_settings
from .tracing import configure_tracing


class ServiceExit(Exception):
    """Exit with ``code``; what led to it has been logged (a supervisor whose worker died)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


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
        return EXIT_FAILED
    except WorkerFailed:  # the watchdog has logged which worker and why
        return EXIT_WORKER_FAILED
    except ServiceExit as exc:
        return exc.code
    except KafkaException as exc:
        error = error_of(exc)
        if error is None or error.code() != KafkaError._INVALID_ARG:
            raise
        # librdkafka refused a setting while creating a client (unreadable key, key and
        # certificate that do not match, an unknown SASL mechanism).
        print(f"coffee-orders {name}: error: invalid Kafka setting: {error.str()}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    return EXIT_OK


Serve = Callable[[Any], Coroutine[Any, Any, None]]


def add_service_arguments(
    parser: argparse.ArgumentParser,
    name: str,
    model: type[ServiceSettings],
    serve: Callable[[], Serve],
) -> None:
    """The service's flags on ``parser``; its handler loads the settings and serves.

    ``serve`` returns the service's ``serve``: imported only when the service runs, so that
    ``--help`` and the other commands do not load grpc and Kafka for it.
    """
    add_settings_flags(parser, model)

    def handler(args: argparse.Namespace) -> int:
        def load() -> ServiceSettings:
            flags = settings_flags(args, model)
            return load_settings(model, flags=flags, config_path=args.config)

        return run_service(name, load, serve())

    parser.set_defaults(handler=handler)


def service_main(
    name: str,
    description: str,
    model: type[ServiceSettings],
    serve: Callable[[], Serve],
    argv: Sequence[str] | None = None,
) -> int:
    """``python -m coffee_orders_<name>.main``: the service alone, without the CLI around it."""
    parser = argparse.ArgumentParser(prog=f"coffee-orders {name}", description=description)
    add_service_arguments(parser, name, model, serve)
    args = parser.parse_args(argv)
    return int(args.handler(args))
