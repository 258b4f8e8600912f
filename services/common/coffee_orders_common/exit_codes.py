"""Every exit code of the ``coffee-orders`` command, its services and its client commands.

A process supervisor (systemd, Kubernetes, ``coffee-orders dev``) and a shell script tell from
the code alone what happened, so each one means one thing across the commands.
"""

from __future__ import annotations

EXIT_OK = 0
# A service could not bind its gRPC or metrics address; a client call failed (unreachable,
# rejected, any other non-OK status) or its TLS files could not be read.
EXIT_FAILED = 1
# Bad settings or a bad command line (argparse's own code): a flag, an env variable, the config
# file, a Kafka setting librdkafka refused, an order-state topic that cannot serve.
EXIT_BAD_SETTINGS = 2
# ``order --wait processed``: the deadline passed before the order was processed (it is placed).
EXIT_NOT_FINAL = 3
# ``order --wait processed``, ``get``, ``watch``: the consumer dead-lettered the order (final).
EXIT_DEAD_LETTERED = 4
# sysexits.h EX_SOFTWARE: a worker of the service died or stalled; the service is broken, not its
# settings or its address. A supervisor restarts it.
EXIT_WORKER_FAILED = 70
# 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
# 128 + SIGPIPE, what shells report for a writer whose reader went away.
EXIT_BROKEN_PIPE = 141
