"""TLS flags shared by the client commands (order, status)."""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from coffee_orders_client import tls_credentials
from coffee_orders_common.exit_codes import EXIT_FAILED
from coffee_orders_common.option_help import option_help


def add_tls_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tls", action="store_true", help="connect with TLS (system CAs unless --tls-ca)"
    )
    for flag, env, text in (
        ("--tls-ca", "COFFEE_TLS_CA", "CA (PEM) of the server"),
        ("--tls-cert", "COFFEE_TLS_CLIENT_CERT", "client certificate (PEM) for mTLS"),
        ("--tls-key", "COFFEE_TLS_CLIENT_KEY", "key of --tls-cert (PEM)"),
    ):
        parser.add_argument(
            flag, default=os.environ.get(env), help=option_help(text, env=env, default="none")
        )


def credentials_from(args: argparse.Namespace, command: str) -> grpc.ChannelCredentials | None:
    """Channel credentials from the flags; a bad flag ends the command with one line, exit 1."""
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    try:
        return tls_credentials(args.tls_ca, args.tls_cert, args.tls_key)
    except (OSError, ValueError) as exc:
        print(f"coffee-orders {command}: TLS: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
