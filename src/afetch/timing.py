"""Per-request phase timings: DNS, TCP connect, TLS handshake, first byte.

afetch's own client (http1.py) fills a HopTiming directly. For requests
through aiohttp (proxies, ``--http-client aiohttp``): aiohttp's trace hooks
report DNS and "connection ready" (after TLS), but nothing between the TCP
connect and the TLS handshake. The connector's
``socket_factory`` hands out sockets that note when their connect completes
(asyncio checks SO_ERROR, or connect() returns at once), which splits the
two. A ContextVar set at the start of each hop ties hooks and sockets, all
running in the request's task, to that hop's HopTiming.
"""

from __future__ import annotations

import socket
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import SimpleNamespace

    import aiohttp

_current: ContextVar[HopTiming | None] = ContextVar("afetch_hop_timing", default=None)


@dataclass(slots=True)
class HopTiming:
    """Clock readings (perf_counter) of one request-response exchange."""

    start: float
    dns_start: float | None = None
    dns_end: float | None = None
    tcp_start: float | None = None
    tcp_end: float | None = None
    ready: float | None = None  # connection usable: after TLS for https
    headers: float | None = None

    def phases(self, total_ms: float, tls: bool) -> dict[str, float | None]:
        """The record's ``timing`` object; a phase that did not happen is None."""
        return {
            "dns_ms": _span(self.dns_start, self.dns_end),
            "connect_ms": _span(self.tcp_start, self.tcp_end),
            "tls_ms": _span(self.tcp_end, self.ready) if tls else None,
            "ttfb_ms": _span(self.start, self.headers),
            "total_ms": round(total_ms, 3),
        }


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000, 3)


def begin_hop() -> HopTiming:
    """Start timing one exchange; hooks and sockets of this task report into it."""
    timing = HopTiming(time.perf_counter())
    _current.set(timing)
    return timing


class TimedSocket(socket.socket):
    """A socket that records when its TCP connect completed."""

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
    sock = TimedSocket(family, type_, proto)
    timing = _current.get()
    sock._timing = timing
    if timing is not None:
        timing.tcp_start = time.perf_counter()
        timing.tcp_end = None  # a happy-eyeballs retry on another address starts over
    return sock


def trace_config() -> aiohttp.TraceConfig:
    """Hooks for the DNS phase and for "connection ready" (after TLS)."""
    import aiohttp

    config = aiohttp.TraceConfig()
    config.on_dns_resolvehost_start.append(_mark("dns_start"))
    config.on_dns_resolvehost_end.append(_mark("dns_end"))
    config.on_connection_create_end.append(_mark("ready"))
    return config


def _mark(field: str) -> Any:
    async def hook(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        timing = _current.get()
        if timing is not None:
            setattr(timing, field, time.perf_counter())

    return hook
