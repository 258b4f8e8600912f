"""Entry point of the ``coffee-orders`` command.

Ctrl-C ends any command without a traceback, at any moment. This module imports nothing but
``sys`` and the exit codes (constants) before ``main``'s ``try``: the commands (and grpc,
protobuf, confluent_kafka with them) are imported inside it, because importing them takes up to
a second on a busy machine and a KeyboardInterrupt raised during an import outside the ``try``
would escape as a traceback.
A reader that goes away (``coffee-orders status --watch | head``) ends it as quietly.
"""

from __future__ import annotations

import sys

from coffee_orders_common.exit_codes import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    try:
        from .commands import build_parser

        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's last flush would hit the broken pipe again."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
