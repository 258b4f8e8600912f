"""The process's open-file limit: every connection costs a file descriptor."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)
# Kafka sockets (a few per broker and client), log and state files, the listening sockets.
RESERVED_FILES = 256


def raise_limit(connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; warn when ``connections`` cannot fit.

    Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit", extra={"fields": {"error": str(exc)}})
    needed = connections + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "the open-file limit is below the connection limits: connections beyond it fail",
            extra={"fields": {"open_files": soft, "needed": needed}},
        )
    return soft
