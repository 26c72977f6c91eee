"""aiohttp's connector as afetch needs it: bounded idle connections, HEAD answers kept,
sockets and trace hooks that fill the exchange's HopTiming, the run's resolver."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
import weakref
from collections import OrderedDict
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler

from afetch.errors import (
    DnsError,
)
from afetch.http.timing import HopTiming

if TYPE_CHECKING:
    from types import SimpleNamespace

    from afetch.http.dns import Resolver


#: The exchange the current task is timing: trace hooks and sockets report into it.
current_hop: ContextVar[HopTiming | None] = ContextVar("afetch_hop_timing", default=None)


class HeadTolerantHandler(ResponseHandler):
    """aiohttp's protocol, keeping the answer to a HEAD that is followed by body bytes.

    Some servers (busybox httpd) send the body on HEAD too. aiohttp's parser
    reads the bytes after the head as the next response and fails the whole
    packet, status and all: the record had no status where curl and the lean
    client record it. Here what follows a HEAD answer's head is dropped and
    the connection is not used again, as the lean client does.
    """

    _afetch_head_done = False

    def set_response_params(self, **kwargs: Any) -> None:
        self._afetch_head_done = False
        super().set_response_params(**kwargs)

    def data_received(self, data: bytes) -> None:
        if getattr(self, "_skip_payload", False):
            if self._afetch_head_done:
                self._drop_the_rest()
                return
            end = data.find(b"\r\n\r\n")
            if end >= 0 and data[9:10] != b"1":  # not a 1xx: this head is the answer
                self._afetch_head_done = True
                if end + 4 < len(data):
                    super().data_received(data[: end + 4])
                    self._drop_the_rest()
                    return
        super().data_received(data)

    def _drop_the_rest(self) -> None:
        self.force_close()
        if self.transport is not None:
            self.transport.close()


class BoundedConnector(aiohttp.TCPConnector):
    """aiohttp's connector with idle connections bounded as the lean pool bounds them.

    aiohttp keeps every idle connection for its keep-alive time however many
    hosts there are: on 50 000 distinct hosts that ran out of descriptors
    ("Too many open files") and memory grew with the list. Here at most
    ``max_idle`` hosts keep idle connections; the host released least
    recently loses its idle ones first. This reaches into the connector's
    ``_conns`` (aiohttp 3.10+); if that ever changes shape, nothing is evicted.
    """

    def __init__(self, *args: Any, max_idle: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_idle = max(1, max_idle)
        self._idle_hosts: OrderedDict[Any, None] = OrderedDict()
        if isinstance(getattr(self, "_factory", None), functools.partial):
            handler = functools.partial(HeadTolerantHandler, loop=self._loop)
            self._factory = cast("functools.partial[ResponseHandler]", handler)

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        super()._release(key, protocol, should_close=should_close)
        conns = getattr(self, "_conns", None)
        if not isinstance(conns, dict) or key not in conns:
            return
        self._idle_hosts[key] = None
        self._idle_hosts.move_to_end(key)
        while len(self._idle_hosts) > self._max_idle:
            oldest, _ = self._idle_hosts.popitem(last=False)
            for held in conns.pop(oldest, ()):
                held[0].close()


# -- timing: trace hooks and a socket that notes when its connect completed ------

#: Sockets the session made (weakly held): at close, TLS ones still say goodbye.
_open_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
#: How long closing waits for TLS connections to exchange close_notify.
GOODBYE_SECONDS = 0.25


async def sockets_closed(limit: float) -> None:
    """Wait (briefly) until every socket the session opened is closed.

    aiohttp closes a TLS connection by starting its shutdown and returns at
    once (aiohttp issue #1925); a transport still shutting down when the
    loop closes is an "unclosed transport".
    """
    deadline = time.monotonic() + limit
    # No event to wait on: the loop (asyncio or uvloop) closes the socket itself.
    while any(sock.fileno() != -1 for sock in _open_sockets) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


class _TimedSocket(socket.socket):
    """A socket that records when its TCP connect completed, and to whom."""

    __slots__ = ("_timing",)
    _timing: HopTiming | None

    def connect(self, address: Any) -> None:
        super().connect(address)  # raises BlockingIOError while the handshake runs
        self._connected()

    def getsockopt(self, *args: Any) -> Any:
        value = super().getsockopt(*args)
        if args[:2] == (socket.SOL_SOCKET, socket.SO_ERROR) and value == 0:
            self._connected()  # asyncio asks SO_ERROR once the socket is writable
        return value

    def _connected(self) -> None:
        timing = getattr(self, "_timing", None)
        if timing is not None and timing.tcp_end is None:
            timing.tcp_end = time.perf_counter()


def socket_factory(addr_info: tuple[Any, ...]) -> socket.socket:
    """For ``TCPConnector(socket_factory=...)``."""
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = _TimedSocket(family, type_, proto)
    _open_sockets.add(sock)
    timing = current_hop.get()
    sock._timing = timing
    if timing is not None:
        timing.tcp_start = time.perf_counter()
        timing.tcp_end = None  # a happy-eyeballs retry on another address starts over
    return sock


class SharedResolver(AbstractResolver):
    """aiohttp's resolver interface over the run's Resolver (which times the lookup)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            infos = await self._resolver.resolve(host, port, current_hop.get())
        except DnsError as exc:
            raise OSError(None, str(exc).partition(": ")[2] or str(exc)) from exc
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=sockaddr[0],
                port=sockaddr[1],
                family=info_family,
                proto=0,
                flags=flags,
            )
            for info_family, _, _, _, sockaddr in infos
        ]

    async def close(self) -> None:
        return None  # the transport closes the run's resolver


def trace_config() -> aiohttp.TraceConfig:
    """Hooks for "connection ready" (after TLS), reuse and waiting for a connection
    slot (the ``queue`` phase); the resolver times DNS."""
    config = aiohttp.TraceConfig()
    config.on_connection_create_end.append(_mark("ready"))
    config.on_connection_reuseconn.append(_reused)
    config.on_connection_queued_start.append(_queued(True))
    config.on_connection_queued_end.append(_queued(False))
    return config


def _queued(waiting: bool) -> Any:
    async def hook(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        if (timing := current_hop.get()) is not None:
            timing.queued = waiting

    return hook


def _mark(field: str) -> Any:
    async def hook(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        timing = current_hop.get()
        if timing is not None:
            setattr(timing, field, time.perf_counter())

    return hook


async def _reused(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    timing = current_hop.get()
    if timing is not None:
        timing.reused = True
