"""Prometheus metrics endpoint shared by both services (off unless --metrics-listen is given)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from .settings import parse_host_port

log = logging.getLogger(__name__)


class MetricsError(Exception):
    """The metrics endpoint could not start; one line for a person."""


def start_metrics_endpoint(listen: str | None) -> int | None:
    """Serve /metrics on ``listen`` (HOST:PORT, port 0 picks one); returns the bound port."""
    if not listen:
        return None
    host, port = parse_host_port(listen)
    try:
        server, _ = start_http_server(port, addr=host)
    except OSError as exc:
        raise MetricsError(f"cannot serve metrics on {listen}: {exc.strerror}") from None
    bound = int(server.server_address[1])
    log.info("metrics endpoint listening", extra={"fields": {"address": f"{host}:{bound}"}})
    return bound
