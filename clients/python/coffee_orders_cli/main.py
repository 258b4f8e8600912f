"""Entry point of the ``coffee-orders`` command.

Ctrl-C ends any command without a traceback, at any moment. This module imports nothing but
``sys`` before ``main``'s ``try``: the commands (and grpc, protobuf, confluent_kafka with them)
are imported inside it, because importing them takes up to a second on a busy machine and a
KeyboardInterrupt raised during an import outside the ``try`` would escape as a traceback.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


def main(argv: list[str] | None = None) -> int:
    try:
        from .commands import build_parser

        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
