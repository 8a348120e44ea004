"""The load generator's HTTP/1.1 client against a real HTTP server (aiohttp's)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from benchmarks.http_client import ConnectionPool, HttpError, Target

CONTENT_TYPE = "application/octet-stream"


def _request(target: Target, body: bytes, **headers: str) -> bytes:
    return target.request_head(CONTENT_TYPE, len(body), headers) + body


async def _server() -> TestServer:
    peers: set[object] = set()

    async def echo(request: web.Request) -> web.Response:
        peers.add(request.transport)
        body = await request.read()
        reply = f"{len(peers)}:{request.headers.get('X-Tag', '')}:".encode() + body
        return web.Response(status=202, body=reply)

    async def chunked(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"first ", b"second ", b"third"):
            await response.write(part)
        await response.write_eof()
        return response

    async def closing(request: web.Request) -> web.Response:
        peers.add(request.transport)
        await request.read()
        return web.Response(status=503, body=b"bye", headers={"Connection": "close"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/closing", closing)
    app.router.add_post("/slow", slow)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_requests_share_a_keep_alive_connection_and_read_whole_bodies() -> None:
    server = await _server()
    try:
        target = Target.parse(str(server.make_url("/echo")))
        pool = ConnectionPool(limit=4, timeout_s=5)
        answers = [await pool.post(target, _request(target, b"x" * n, **{"X-Tag": str(n)}))
                   for n in (1, 70_000, 3)]  # fmt: skip
        pool.close()
    finally:
        await server.close()
    assert answers == [(202, b"1:1:x"), (202, b"1:70000:" + b"x" * 70_000), (202, b"1:3:xxx")]


async def test_a_chunked_answer_is_reassembled() -> None:
    server = await _server()
    try:
        target = Target.parse(str(server.make_url("/chunked")))
        pool = ConnectionPool(limit=1, timeout_s=5)
        first = await pool.post(target, _request(target, b"a"))
        second = await pool.post(target, _request(target, b"b"))
        pool.close()
    finally:
        await server.close()
    assert first == second == (200, b"first second third")


async def test_connection_close_is_honoured_and_the_next_request_reconnects() -> None:
    server = await _server()
    try:
        closing = Target.parse(str(server.make_url("/closing")))
        echo = Target.parse(str(server.make_url("/echo")))
        pool = ConnectionPool(limit=1, timeout_s=5)
        refused = await pool.post(closing, _request(closing, b"a"))
        answered = await pool.post(echo, _request(echo, b"b"))
        pool.close()
    finally:
        await server.close()
    assert refused == (503, b"bye")
    assert answered == (202, b"2::b")  # a second connection: the first was closed


async def test_a_connection_idle_too_long_is_replaced_not_reused() -> None:
    now = [100.0]
    server = await _server()
    try:
        target = Target.parse(str(server.make_url("/echo")))
        pool = ConnectionPool(limit=1, timeout_s=5, idle_limit_s=4.0, clock=lambda: now[0])
        first = await pool.post(target, _request(target, b"a"))
        now[0] += 3.9  # within the limit: the same connection
        second = await pool.post(target, _request(target, b"b"))
        now[0] += 4.1  # past it: the server may be closing it, so a new one
        third = await pool.post(target, _request(target, b"c"))
        pool.close()
    finally:
        await server.close()
    assert [first, second, third] == [(202, b"1::a"), (202, b"1::b"), (202, b"2::c")]


async def test_a_slow_answer_times_out_and_an_unreachable_port_is_an_http_error() -> None:
    server = await _server()
    try:
        slow = Target.parse(str(server.make_url("/slow")))
        pool = ConnectionPool(limit=2, timeout_s=0.2)
        with pytest.raises(TimeoutError):
            await pool.post(slow, _request(slow, b""))
    finally:
        await server.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    nowhere = Target("127.0.0.1", free_port, "/")
    with pytest.raises(HttpError, match="cannot connect"):
        await pool.post(nowhere, _request(nowhere, b""))
    pool.close()


def test_only_plain_http_urls_are_accepted() -> None:
    assert Target.parse("http://127.0.0.1:8080/v1/jobs?x=1") == Target(
        "127.0.0.1", 8080, "/v1/jobs?x=1"
    )
    with pytest.raises(ValueError, match="only http://"):
        Target.parse("https://example.test/")
