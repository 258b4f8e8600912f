"""gRPC server scaffolding both services share: health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import open_files
from .server_limits import ServerLimits
from .settings import TlsSettings

log = logging.getLogger(__name__)
ServingStatus = health_pb2.HealthCheckResponse.ServingStatus
# grpcio-health-checking's public asyncio servicer; grpc-stubs (1.53) predates ``health.aio``.
AsyncHealthServicer: Any = health.aio.HealthServicer  # type: ignore[attr-defined]
# The health name for liveness probes: SERVING while the process and its workers are alive, also
# while Kafka is away (readiness, the other names, follows Kafka); NOT_SERVING once a worker died.
LIVENESS_SERVICE = "liveness"

# Orders are tiny: anything bigger than these is refused before it costs memory.
MAX_REQUEST_BYTES = 1024 * 1024
# A call's metadata: every header of the request, each counted as HTTP/2 does (name + value + 32
# bytes), the ~0.5 KiB gRPC sends on its own included. gRPC core has two limits: up to the soft
# one (grpc.max_metadata_size) a call is accepted, from the hard one
# (grpc.absolute_max_metadata_size, by default 1.25 times the soft one: 20 KiB) it is refused, and
# in between it is refused at random, more often the closer it is to the hard one; so 20 KiB got
# through now and then. The hard limit one byte above the soft one leaves nothing in between:
# MAX_METADATA_BYTES is accepted, a byte more always refused (RESOURCE_EXHAUSTED).
MAX_METADATA_BYTES = 16 * 1024
MAX_CONCURRENT_STREAMS = 1000
_SERVER_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    ("grpc.max_metadata_size", MAX_METADATA_BYTES),
    ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES + 1),
    ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
)
KEEPALIVE_TIMEOUT_S = 20


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


def connection_options(limits: ServerLimits) -> tuple[tuple[str, int], ...]:
    """gRPC core's own bounds on connections (channel arguments; see docs/security.md)."""
    return (
        ("grpc.max_allowed_incoming_connections", limits.max_connections),
        ("grpc.max_connection_idle_ms", _ms(limits.idle_timeout_s)),
        ("grpc.server_handshake_timeout_ms", _ms(limits.handshake_timeout_s)),
        ("grpc.max_connection_age_ms", _ms(limits.max_age_s)),
        ("grpc.max_connection_age_grace_ms", _ms(limits.max_age_grace_s)),
        ("grpc.keepalive_time_ms", _ms(limits.keepalive_s)),
        ("grpc.keepalive_timeout_ms", _ms(KEEPALIVE_TIMEOUT_S)),
    )


class ListenError(Exception):
    """The server could not bind its address; the message is one line for a person."""


class ServingState:
    """The readiness of the services this process serves, as one switch (``liveness`` apart)."""

    def __init__(self, servicer: Any, service_names: Sequence[str]):
        self._servicer = servicer
        self._names = ["", *service_names]
        self.serving = False

    async def set(self, serving: bool) -> None:
        self.serving = serving
        status = ServingStatus.SERVING if serving else ServingStatus.NOT_SERVING
        for name in self._names:
            await self._servicer.set(name, status)

    async def shutting_down(self) -> None:
        """NOT_SERVING for good: later ``set`` calls are ignored."""
        self.serving = False
        await self._servicer.enter_graceful_shutdown()

    async def failed(self) -> None:
        """A worker died or stalled: every name, ``liveness`` included, NOT_SERVING for good."""
        await self.shutting_down()


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """TLS from files; with a client CA, callers must present a certificate it signed (mTLS)."""
    assert tls.cert and tls.key
    key_pair = (Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())
    client_ca = Path(tls.client_ca).read_bytes() if tls.client_ca else None
    return grpc.ssl_server_credentials(
        [key_pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


async def create_server(
    listen: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    tls: TlsSettings | None = None,
    limits: ServerLimits | None = None,
) -> tuple[grpc.aio.Server, int, ServingState]:
    """Build and start a server with health checking and reflection; returns the bound port.

    Health starts NOT_SERVING; the caller flips it once its dependencies are ready. The
    ``liveness`` name is SERVING from the start.
    """
    limits = limits or ServerLimits()
    open_files.raise_limit(limits.max_connections + limits.max_metrics_connections)
    server = grpc.aio.server(
        options=_SERVER_OPTIONS + connection_options(limits),
        maximum_concurrent_rpcs=limits.max_calls,
    )
    register(server)
    health_servicer = AsyncHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    try:
        if tls is not None and tls.enabled:
            port = server.add_secure_port(listen, server_credentials(tls))
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ListenError(f"cannot listen on {listen}: {exc}") from None
    if port == 0:
        raise ListenError(f"cannot listen on {listen}: address in use or not available")
    state = ServingState(health_servicer, service_names)
    await state.set(False)
    await health_servicer.set(LIVENESS_SERVICE, ServingStatus.SERVING)
    await server.start()
    return server, port, state


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` instead of killing the process mid-call."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def drain(server: grpc.aio.Server, state: ServingState, grace_period_s: float) -> None:
    """NOT_SERVING, refuse new calls, let in-flight calls finish within the grace period."""
    await state.shutting_down()
    await server.stop(grace_period_s)


OnReady = Callable[[int], Awaitable[None] | None]


async def serve_until_stopped(
    what: str,
    listen: str,
    port: int,
    stop: asyncio.Event | None,
    on_ready: OnReady | None,
    tls: TlsSettings | None = None,
) -> None:
    """Announce the bound address, tell ``on_ready``, and wait for ``stop``.

    Without a ``stop`` event (the command line), SIGTERM and SIGINT stop the service.
    """
    host = listen.rsplit(":", 1)[0]
    security = "plaintext"
    if tls is not None and tls.enabled:
        security = "mTLS" if tls.client_ca else "TLS"
    fields = {"address": f"{host}:{port}", "transport": security}
    log.info(f"{what} listening", extra={"fields": fields})
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    if on_ready is not None:
        maybe = on_ready(port)
        if maybe is not None:
            await maybe
    await stop.wait()
