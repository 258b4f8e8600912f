"""Prometheus metrics endpoint shared by both services (off unless --metrics-listen is given).

The exposition is prometheus_client's own: ``choose_encoder`` picks the format from the Accept
header (the text format unless OpenMetrics is asked for, as Prometheus does) and its encoder
renders the registry. A small asyncio HTTP/1.x front serves it on the service's own event loop;
the standard library parses the headers. Not prometheus_client's threaded HTTP server: it keeps
a thread per connection for as long as the connection stays open, idle or not. Not its ASGI app
under an ASGI server either: none is among our dependencies, and uvicorn's limit answers 503
only once a request arrives, holding idle connections beyond it. Here a connection costs no
thread, is closed once it has been idle for the idle timeout (also when it never finishes a
request), and connections beyond a bound get 503 at once. Any path answers GET and HEAD.

Each service instance registers its metrics in a registry of its own (``instance_registry``,
not prometheus_client's global one) and its endpoint serves that registry, so two services in
one process (tests, benchmarks) each count and report only their own.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import logging
from http import HTTPStatus

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from .server_limits import ServerLimits
from .setting_fields import parse_host_port

log = logging.getLogger(__name__)
MAX_REQUEST_HEAD_BYTES = 8 * 1024  # request line and headers; a scrape sends a few hundred


def instance_registry() -> CollectorRegistry:
    """A registry for one service instance, with the process, platform and GC collectors that
    prometheus_client's global registry has (``process_resident_memory_bytes``, ...)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsError(Exception):
    """The metrics endpoint could not start; one line for a person."""


def _response(status: HTTPStatus, headers: dict[str, str], body: bytes, keep_alive: bool) -> bytes:
    head = [f"HTTP/1.1 {status.value} {status.phrase}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _refusal(status: HTTPStatus, reason: str, headers: dict[str, str] | None = None) -> bytes:
    return _response(status, headers or {}, f"{reason}\n".encode("latin-1", "replace"), False)


def _wants_keep_alive(version: str, headers: http.client.HTTPMessage) -> bool:
    connection = (headers.get("Connection") or "").strip().lower()
    return connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"


def answer(head: bytes, registry: CollectorRegistry) -> tuple[bytes, bool]:
    """The response to one request head (``registry`` in the format the Accept header asks
    for), and whether the connection may stay open."""
    request_line, _, fields = head.partition(b"\r\n")
    method, _, rest = request_line.decode("latin-1").partition(" ")
    version = rest.rpartition(" ")[2]
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        return _refusal(HTTPStatus.BAD_REQUEST, "not an HTTP/1.x request"), False
    if method not in ("GET", "HEAD"):
        allow = {"Allow": "GET, HEAD"}  # and close: a body may follow
        return _refusal(
            HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not served; use GET", allow
        ), False
    try:
        headers = http.client.parse_headers(io.BytesIO(fields))
    except http.client.HTTPException:  # more than 100 header lines
        return _refusal(HTTPStatus.BAD_REQUEST, "too many headers"), False
    encoder, content_type = choose_encoder(headers.get("Accept", ""))
    metrics = encoder(registry)
    keep_alive = _wants_keep_alive(version, headers)
    response = _response(HTTPStatus.OK, {"Content-Type": content_type}, metrics, keep_alive)
    if method == "HEAD":
        response = response[: len(response) - len(metrics)]
    return response, keep_alive


class MetricsEndpoint:
    """Serves /metrics once started; ``close`` stops listening and drops open connections."""

    def __init__(self, registry: CollectorRegistry, idle_timeout_s: float, max_connections: int):
        self._registry = registry
        self._idle_timeout_s = idle_timeout_s
        self._max_connections = max_connections
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=MAX_REQUEST_HEAD_BYTES, backlog=1024
        )
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self._max_connections:
            refusal = "too many connections to the metrics endpoint"
            writer.write(_refusal(HTTPStatus.SERVICE_UNAVAILABLE, refusal))
            writer.close()  # the refusal fits in the socket buffer; close sends it first
            return
        self._open.add(writer)
        try:
            await self._requests(reader, writer)
            writer.close()  # sends what is buffered, then closes
            await asyncio.wait_for(writer.wait_closed(), self._idle_timeout_s)
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            writer.transport.abort()  # idle, too slow, gone, or a request head over the limit
        finally:
            self._open.discard(writer)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        keep_alive = True
        while keep_alive:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._idle_timeout_s)
            response, keep_alive = answer(head, self._registry)
            writer.write(response)
            await asyncio.wait_for(writer.drain(), self._idle_timeout_s)


async def start_metrics_endpoint(
    listen: str | None, registry: CollectorRegistry, limits: ServerLimits | None = None
) -> MetricsEndpoint:
    """Serve ``registry`` as /metrics on ``listen`` (HOST:PORT, port 0 picks one) on the running
    loop; with no ``listen`` the endpoint is off (and ``close`` does nothing)."""
    limits = limits or ServerLimits()
    endpoint = MetricsEndpoint(registry, limits.idle_timeout_s, limits.max_metrics_connections)
    if not listen:
        return endpoint
    host, port = parse_host_port(listen)
    try:
        bound = await endpoint.start(host, port)
    except OSError as exc:
        raise MetricsError(f"cannot serve metrics on {listen}: {exc.strerror}") from None
    log.info("metrics endpoint listening", extra={"fields": {"address": f"{host}:{bound}"}})
    return endpoint
