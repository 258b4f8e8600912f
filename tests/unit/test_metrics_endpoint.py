"""The /metrics endpoint over real sockets (no broker): prometheus_client's exposition in the
format asked for, GET and HEAD only, keep-alive, and the bounds on connections, idle time and
request heads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from coffee_orders_common.metrics import MAX_REQUEST_HEAD_BYTES, MetricsEndpoint
from prometheus_client import CollectorRegistry, Counter

IDLE_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 2
BOUND_S = 10.0  # for anything the endpoint should do at once or after the idle timeout


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """An endpoint on a free port serving a registry with ``orders_total`` at 3."""
    registry = CollectorRegistry()
    Counter("orders", "Orders", registry=registry).inc(3)
    endpoint = MetricsEndpoint(registry, IDLE_TIMEOUT_S, MAX_CONNECTIONS)
    try:
        yield await endpoint.start("127.0.0.1", 0)
    finally:
        endpoint.close()


async def _response(reader: asyncio.StreamReader, body: bool = True) -> tuple[str, bytes]:
    """The status line and headers of the next response, and its body (``body``: one is sent)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND_S)
    text = head.decode("latin-1")
    length = next(
        int(line.split(":", 1)[1])
        for line in text.split("\r\n")
        if line.lower().startswith("content-length:")
    )
    content = await asyncio.wait_for(reader.readexactly(length), BOUND_S) if body else b""
    return text, content


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), BOUND_S) == b""
    except ConnectionError:
        return True


async def test_get_answers_the_text_format_and_keeps_the_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):  # two requests on one HTTP/1.1 connection
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = await _response(reader)
        assert head.startswith("HTTP/1.1 200 OK\r\n")
        assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
        assert "Connection: keep-alive" in head
        assert b"\norders_total 3.0\n" in body
    writer.close()


async def test_openmetrics_when_the_accept_header_asks_for_it(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    writer.write(f"GET /metrics HTTP/1.0\r\nAccept: {accept}\r\n\r\n".encode())
    head, body = await _response(reader)
    assert "Content-Type: application/openmetrics-text; version=1.0.0" in head
    assert "Connection: close" in head  # HTTP/1.0 without keep-alive
    assert b"orders_total 3.0\n" in body and body.endswith(b"# EOF\n")
    assert await _closed(reader)


async def test_head_has_the_headers_and_no_body(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    head, _ = await _response(reader, body=False)
    assert head.startswith("HTTP/1.1 200 OK\r\n") and "Content-Length: 0" not in head
    head, body = await _response(reader)  # the next bytes are the second response's
    assert head.startswith("HTTP/1.1 200 OK\r\n") and b"orders_total" in body
    assert await _closed(reader)


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n", "405 Method Not Allowed"),
        (b"GET /metrics\r\n\r\n", "400 Bad Request"),
        (b"hello there\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", "400 Bad Request"),
    ],
)
async def test_other_requests_are_refused_and_closed(
    port: int, request_head: bytes, status: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_head)
    head, _ = await _response(reader)
    assert head.startswith(f"HTTP/1.1 {status}\r\n") and "Connection: close" in head
    if status.startswith("405"):
        assert "Allow: GET, HEAD" in head
    assert await _closed(reader)


async def test_connections_beyond_the_bound_get_503_at_once(port: int) -> None:
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS)]
    for held_reader, held_writer in held:  # answered, so counted by the endpoint
        held_writer.write(b"GET / HTTP/1.1\r\n\r\n")
        assert (await _response(held_reader))[0].startswith("HTTP/1.1 200 OK\r\n")
    reader, _ = await asyncio.open_connection("127.0.0.1", port)
    head, body = await _response(reader)  # without sending anything
    assert head.startswith("HTTP/1.1 503 Service Unavailable\r\n")
    assert body == b"too many connections to the metrics endpoint\n"
    assert await _closed(reader)
    for _, writer in held:
        writer.close()


async def test_idle_and_unfinished_requests_are_closed_after_the_idle_timeout(port: int) -> None:
    silent, _ = await asyncio.open_connection("127.0.0.1", port)
    unfinished, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never the empty line
    assert await _closed(silent)
    assert await _closed(unfinished)


async def test_a_request_head_over_the_limit_closes_the_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nX: " + b"y" * MAX_REQUEST_HEAD_BYTES + b"\r\n\r\n")
    assert await _closed(reader)
