"""The HTTP server's defences against slow and broken clients (uvicorn, httptools).

Shopify gives a delivery 1 s to connect and 5 s for the whole request; a genuine client sends its
headers and body at once. Uvicorn itself has no header or body read timeout (only an idle
keep-alive one after a response), and its `limit_concurrency` answers 503 to the *newest*
request once the bound is reached, so sockets that never finish their request would lock genuine
deliveries out, and each holds a file descriptor until the process runs out (then new
connections are reset). Here:

- every request must arrive whole (headers and body) within `read_timeout` of the connection
  (or, on a kept-alive connection, of its first byte), or the connection is closed;
- at most `max_connections` are open; one more evicts the oldest connection that is still
  waiting for its request (stalled, or idle between requests), not the newcomer: a flood of
  stalled sockets then costs each of them its place, while a genuine request, read in
  milliseconds, is not waiting long enough to be the oldest;
- a request line and headers over MAX_HEAD_BYTES get uvicorn's 400 for an invalid request (httptools
  sets no limit of its own, so a client could otherwise pile up headers for the whole 5 s);
- a client that goes away before its request is read is one DEBUG line, not a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any, ClassVar, cast

import uvicorn
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from plugin import logs
from plugin.settings import Settings

log = logging.getLogger("gallra.http")

# Shopify's whole-request budget (shopify-platform.md 2.3); a stalled request is closed by then.
READ_TIMEOUT = 5.0
MAX_CONNECTIONS = 1024
# Descriptors the process needs besides client sockets: database files and pool, the intake
# writer's socket pair, the event loop, logs, outgoing HTTP connections.
RESERVED_FILES = 128
# Shopify's headers are a few kilobytes, an admin request's (a session token) not many more.
MAX_HEAD_BYTES = 64 * 1024


class HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers 400 and closes."""


def connection_bound(wanted: int = MAX_CONNECTIONS) -> int:
    """`wanted`, or less when the process's open-file limit could not hold that many sockets
    beside what it needs anyway (256 by default on macOS)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, max(soft // 2, soft - RESERVED_FILES))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with a request read deadline and an evicting connection bound.
    Configured per server by `guarded_protocol`."""

    read_timeout: ClassVar[float] = READ_TIMEOUT
    max_connections: ClassVar[int] = MAX_CONNECTIONS
    # Connections waiting for a request, oldest first (a dict keeps insertion order).
    waiting: ClassVar[dict[GuardedHttpToolsProtocol, None]] = {}

    _deadline: asyncio.TimerHandle | None = None
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_request()
        if len(self.connections) > self.max_connections:
            self._evict_oldest_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_read()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._deadline is None:  # a kept-alive connection's next request (or a pipelined one)
            self._deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def on_message_complete(self) -> None:
        self._request_read()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle until the next request (uvicorn's keep-alive timeout closes it): evictable. Not
        # when uvicorn has just started a pipelined request that was already read.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.waiting[self] = None

    def _wait_for_request(self) -> None:
        self.waiting[self] = None
        self._deadline = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _request_read(self) -> None:
        self.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        self._close("did not send its request in time")

    def _evict_oldest_waiting(self) -> None:
        # Oldest first; only when nothing else waits is the newcomer itself turned away.
        victim = next((other for other in self.waiting if other is not self), self)
        victim._request_read()
        victim._close("closed to make room: too many connections")

    def _close(self, why: str) -> None:
        if not self.transport.is_closing():
            log.debug("HTTP connection %s", why)
            self.transport.close()


def guarded_protocol(read_timeout: float, max_connections: int) -> type[HttpToolsProtocol]:
    """A protocol class with its own limits and its own waiting list (one per server)."""
    attributes: dict[str, Any] = {
        "read_timeout": read_timeout,
        "max_connections": max_connections,
        "waiting": {},
    }
    return cast(
        type[HttpToolsProtocol], type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), attributes)
    )


class QuietDisconnects:
    """ASGI wrapper: a request whose client went away while it was being read ends quietly.

    Starlette raises ClientDisconnect from the body read; left alone it reaches uvicorn, which logs
    "Exception in ASGI application" with a ~45-line traceback per aborted upload. There is no one
    to answer, so one DEBUG line is all it is worth.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            log.debug("client went away before its request was read")


def uvicorn_config(
    app: ASGIApp,
    settings: Settings,
    host: str,
    port: int,
    *,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int | None = None,
) -> uvicorn.Config:
    """How `gallra serve` runs the app; tests and bench/slow_clients.py use exactly this."""
    return uvicorn.Config(
        QuietDisconnects(app),
        host=host,
        port=port,
        loop="uvloop",
        http=guarded_protocol(read_timeout, max_connections or connection_bound()),
        **logs.UVICORN,
    )
