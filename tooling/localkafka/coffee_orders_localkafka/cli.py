"""``coffee-orders kafka up|down|status``: a real local Kafka for development and tests."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from coffee_orders_common.option_help import option_help
from coffee_orders_common.settings import state_home

from . import LocalKafka, LocalKafkaError
from .environment import DEFAULT_KAFKA_PORT, KAFKA_PORT_ENV, BadEnvironment, kafka_port
from .security import ClientSettings

_DATA_DIR_HELP = option_help(
    "where data and logs live",
    default="~/.local/state/coffee-orders/kafka ($XDG_STATE_HOME moves it)",
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kafka = subparsers.add_parser(
        "kafka", help="run a local Apache Kafka (KRaft) from Maven Central"
    )
    actions = kafka.add_subparsers(dest="action", required=True)
    up = actions.add_parser(
        "up", help="start the broker(s) in the background and create the topics"
    )
    up.add_argument("--nodes", type=int, choices=(1, 3), default=None, help="1 (default) or 3")
    up.add_argument(
        "--port",
        type=int,
        default=None,
        help=option_help("first broker port", env=KAFKA_PORT_ENV, default=DEFAULT_KAFKA_PORT),
    )
    up.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    up.add_argument(
        "--topic",
        default=os.environ.get("KAFKA_TOPIC", "coffee_orders"),
        help=option_help("orders topic to create", env="KAFKA_TOPIC", default="coffee_orders"),
    )
    up.add_argument("--partitions", type=int, default=6, help="partitions of the topic (default 6)")
    up.add_argument(
        "--tls",
        action="store_true",
        help="also an SSL listener (port +2) and a SASL_SSL listener (port +3, PLAIN and "
        "SCRAM-SHA-512), with certificates made in the data dir",
    )
    up.add_argument(
        "--client-auth",
        choices=("required", "requested", "none"),
        default="required",
        help="client certificates on the SSL listener (default required: mutual TLS)",
    )
    up.add_argument(
        "--sasl-user",
        default="coffee",
        help="SASL user on the SASL_SSL listener, its password made at random (default coffee)",
    )
    for name, text in (("down", "stop the broker(s) by PID"), ("status", "what runs and where")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--data-dir", type=Path, default=None, help=_DATA_DIR_HELP)
    kafka.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir or state_home() / "kafka"
    try:
        if args.action == "up":
            return _up(args, data_dir)
        cluster = LocalKafka(data_dir)
        if args.action == "down":
            pids = cluster.down()
            print(f"stopped {len(pids)} Kafka process(es)" + (f": {pids}" if pids else ""))
            return 0
        return _status(cluster)
    except (LocalKafkaError, BadEnvironment) as exc:
        print(f"coffee-orders kafka: error: {exc}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace, data_dir: Path) -> int:
    cluster = LocalKafka(
        data_dir,
        nodes=args.nodes or 1,
        port=kafka_port(args.port),
        topic=args.topic,
        partitions=args.partitions,
        sasl_users={args.sasl_user: secrets.token_urlsafe(18)} if args.tls else None,
        tls=args.tls,
        ssl_client_auth=args.client_auth,
    )
    if args.nodes is not None and len(cluster.nodes) != args.nodes:
        raise LocalKafkaError(
            f"{data_dir} holds a {len(cluster.nodes)}-node cluster; use another --data-dir for "
            f"{args.nodes} node(s)"
        )
    if args.tls and not cluster.uses_tls:
        raise LocalKafkaError(
            f"{data_dir} holds a cluster without TLS listeners; use another --data-dir for --tls"
        )
    print(f"starting Kafka ({len(cluster.nodes)} node(s)) in {data_dir}", file=sys.stderr)
    bootstrap = cluster.up()
    print(
        f"Kafka is ready; topic {args.topic} exists; logs: {data_dir}/node-*/server.log",
        file=sys.stderr,
    )
    print(bootstrap)
    for listener in cluster.listeners:
        if listener.endswith("SSL"):
            _print_client_settings(cluster.client_settings(listener), data_dir)
    return 0


def _print_client_settings(settings: ClientSettings, data_dir: Path) -> None:
    """Print the settings for a TLS listener and keep them in ``<data dir>/<listener>.env``."""
    lines = [f"{name}={value}" for name, value in settings.environment().items()]
    env_file = data_dir / f"{settings.listener.lower()}.env"
    env_file.write_text("\n".join(lines) + "\n")
    print(f"\n# {settings.listener} listener (also in {env_file}):")
    print("\n".join(lines))


def _status(cluster: LocalKafka) -> int:
    if not cluster.state_file.exists():
        print(f"no local Kafka in {cluster.data_dir}")
        return 1
    nodes = cluster.status()
    for node in nodes:
        state = "running" if node.running else ("starting" if node.pid else "stopped")
        pid = f"pid {node.pid}" if node.pid else "no pid"
        listeners = cluster.node(node.node_id).client_listeners()
        secured = "".join(
            f", {name} 127.0.0.1:{port}" for name, port in listeners.items() if name != "PLAINTEXT"
        )
        print(
            f"node {node.node_id}: {state}, 127.0.0.1:{node.broker_port}{secured}, {pid}, "
            f"log {node.log_path}"
        )
    running = [n for n in nodes if n.running]
    if running:
        print(f"bootstrap servers: {','.join(f'127.0.0.1:{n.broker_port}' for n in running)}")
    return 0 if len(running) == len(nodes) else 3
