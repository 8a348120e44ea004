"""A minimal HTTP/1.1 keep-alive client for the load generator.

The load generator shares the machine's cores with the stack it measures, so every
microsecond it spends per request is taken from the server. A general client (aiohttp)
builds header objects, a response object and a payload stream per request; this one writes
prebuilt request bytes on an `asyncio.Protocol` and parses only what it needs from the
answer (status, Content-Length or chunked framing, Connection: close). It is for the
benchmark's own requests, not a general client: no redirects, no compression, no TLS.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

_HEADER_END = b"\r\n\r\n"
_CHUNKED_END = b"0\r\n\r\n"


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as this client reads it."""


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// URLs are supported, not {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        return cls(parts.hostname, parts.port or 80, path)

    def request_head(self, content_type: str, length: int, headers: dict[str, str]) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Type: {content_type}", f"Content-Length: {length}"]  # fmt: skip
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(HttpError(f"connection closed: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            self._try_answer(self._waiter)

    async def exchange(self, request: bytes, timeout_s: float) -> tuple[int, bytes]:
        if self._transport is None or not self.reusable:
            raise HttpError("connection not open")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._waiter = waiter
        self._transport.write(request)
        timer = loop.call_later(timeout_s, self._expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _expire(self, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no answer in time"))
            self.close()

    def close(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _try_answer(self, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        end = self._buffer.find(_HEADER_END)
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        try:
            status = int(head[9:12])
        except ValueError:
            waiter.set_exception(HttpError(f"not an HTTP answer: {head[:40]!r}"))
            self.close()
            return
        start = end + len(_HEADER_END)
        if b"transfer-encoding: chunked" in head:
            stop = self._buffer.find(_CHUNKED_END, start)
            if stop < 0:
                return
            total, body = stop + len(_CHUNKED_END), _dechunk(bytes(self._buffer[start:stop]))
        else:
            total = start + _content_length(head)
            if len(self._buffer) < total:
                return
            body = bytes(self._buffer[start:total])
        del self._buffer[:total]
        if b"connection: close" in head:
            self.close()
        waiter.set_result((status, body))


def _content_length(head: bytes) -> int:
    marker = head.find(b"content-length:")
    if marker < 0:
        return 0
    line_end = head.find(b"\r\n", marker)
    return int(head[marker + len(b"content-length:") : None if line_end < 0 else line_end])


def _dechunk(raw: bytes) -> bytes:
    body = bytearray()
    cursor = 0
    while cursor < len(raw):
        line_end = raw.index(b"\r\n", cursor)
        size = int(raw[cursor:line_end].split(b";")[0], 16)
        body += raw[line_end + 2 : line_end + 2 + size]
        cursor = line_end + 2 + size + 2
    return bytes(body)


# uvicorn closes a keep-alive connection idle for 5 s: a request written on it at that moment
# is lost with the connection ("connection closed"). After a stall the pool holds more
# connections than the rate needs, and the older ones sit idle until a burst takes them up;
# so a client stops reusing a connection before the server's keep-alive ends.
IDLE_LIMIT_S = 4.0


class ConnectionPool:
    """Keep-alive connections to several targets, at most `limit` open at once; one idle for
    `idle_limit_s` is closed instead of reused."""

    def __init__(
        self,
        limit: int,
        timeout_s: float,
        *,
        idle_limit_s: float = IDLE_LIMIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle: dict[Target, collections.deque[tuple[float, _Connection]]] = (
            collections.defaultdict(collections.deque)
        )
        self._slots = asyncio.Semaphore(limit)
        self._timeout_s = timeout_s
        self._idle_limit_s = idle_limit_s
        self._clock = clock
        self._open: set[_Connection] = set()

    async def post(self, target: Target, request: bytes) -> tuple[int, bytes]:
        """Send one prebuilt request; the answer's status and body."""
        async with self._slots:
            connection = await self._connection(target)
            try:
                answer = await connection.exchange(request, self._timeout_s)
            except BaseException:
                self._discard(connection)
                raise
            if connection.reusable:
                self._idle[target].append((self._clock(), connection))
            else:
                self._discard(connection)
            return answer

    async def _connection(self, target: Target) -> _Connection:
        idle = self._idle[target]
        oldest_allowed = self._clock() - self._idle_limit_s
        while idle:
            since, connection = idle.pop()
            if connection.reusable and since >= oldest_allowed:
                return connection
            self._discard(connection)
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                _Connection, target.host, target.port
            )
        except OSError as exc:
            raise HttpError(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
        self._open.add(connection)
        return connection

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def close(self) -> None:
        for connection in list(self._open):
            self._discard(connection)
        self._idle.clear()
