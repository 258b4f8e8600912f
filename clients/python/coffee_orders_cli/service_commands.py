"""``coffee-orders producer`` and ``coffee-orders consumer``: run a service in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from coffee_orders_common.grpc_server import ListenError
from coffee_orders_common.logs import configure_logging
from coffee_orders_common.metrics import MetricsError
from coffee_orders_common.settings import ServiceSettings, SettingsError, load_settings
from coffee_orders_common.tracing import configure_tracing
from confluent_kafka import KafkaError, KafkaException

EXIT_BAD_SETTINGS = 2


def add_common_flags(parser: argparse.ArgumentParser, default_listen: str) -> None:
    parser.add_argument(
        "--listen", default=None, help=f"HOST:PORT to serve gRPC on (default {default_listen})"
    )
    parser.add_argument(
        "--config", default=None, help="YAML or TOML config file (default $COFFEE_CONFIG)"
    )
    parser.add_argument("--brokers", default=None, help="Kafka bootstrap servers, comma-separated")
    parser.add_argument("--topic", default=None, help="orders topic (default coffee_orders)")
    parser.add_argument(
        "--metrics-listen", default=None, help="HOST:PORT for Prometheus /metrics (default: off)"
    )
    parser.add_argument("--tls-cert", default=None, help="server certificate (PEM): serve TLS")
    parser.add_argument("--tls-key", default=None, help="private key of --tls-cert (PEM)")
    parser.add_argument(
        "--tls-client-ca", default=None, help="CA (PEM) client certificates must chain to: mTLS"
    )


def common_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "listen": args.listen,
        "metrics_listen": args.metrics_listen,
        "kafka.brokers": args.brokers,
        "kafka.topic": args.topic,
        "tls.cert": args.tls_cert,
        "tls.key": args.tls_key,
        "tls.client_ca": args.tls_client_ca,
    }


def run_service(
    name: str,
    load: Callable[[], ServiceSettings],
    serve: Callable[[Any], Coroutine[Any, Any, None]],
) -> int:
    """Load settings (exit 2 on a bad one), set up logging, serve until SIGTERM/SIGINT."""
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
    parser = subparsers.add_parser("producer", help="run the PlaceOrder gRPC service")
    add_common_flags(parser, "0.0.0.0:50051")
    parser.set_defaults(handler=_run_producer)


def _run_producer(args: argparse.Namespace) -> int:
    from coffee_orders_producer.app import serve
    from coffee_orders_producer.settings import PRODUCER_ENV, ProducerSettings

    def load() -> ProducerSettings:
        return load_settings(
            ProducerSettings,
            "producer",
            flags=common_flags(args),
            section_env=PRODUCER_ENV,
            config_path=args.config,
        )

    return run_service("producer", load, serve)


def add_consumer_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "consumer", help="run the consumer daemon and its status gRPC service"
    )
    add_common_flags(parser, "0.0.0.0:50052")
    parser.add_argument("--group", default=None, help="consumer group id (default coffee-orders)")
    parser.add_argument(
        "--state-dir", default=None, help="where processed order_ids are kept across restarts"
    )
    parser.add_argument(
        "--log-format", choices=("text", "json"), default=None, help="log lines as text or JSON"
    )
    parser.set_defaults(handler=_run_consumer)


def _run_consumer(args: argparse.Namespace) -> int:
    from coffee_orders_consumer.app import serve
    from coffee_orders_consumer.settings import CONSUMER_ENV, ConsumerSettings

    def load() -> ConsumerSettings:
        flags = {
            **common_flags(args),
            "kafka.group_id": args.group,
            "state_dir": args.state_dir,
            "log_format": args.log_format,
        }
        return load_settings(
            ConsumerSettings,
            "consumer",
            flags=flags,
            section_env=CONSUMER_ENV,
            config_path=args.config,
        )

    return run_service("consumer", load, serve)
