"""What one request-response exchange measured (phase clock readings) and learned.

Transports fill a HopTiming as they go: the lean one directly, the aiohttp
one through trace hooks. A failure keeps what came before it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio


@dataclass(slots=True)
class HopTiming:
    """Clock readings (perf_counter) and connection facts of one exchange."""

    start: float
    dns_start: float | None = None
    dns_end: float | None = None
    tcp_start: float | None = None
    tcp_end: float | None = None
    ready: float | None = None  # connection usable: after TLS for https
    headers: float | None = None
    #: The peer that answered (the proxy, when proxied); None before a connection.
    remote_ip: str | None = None
    #: The exchange ran on a kept-alive connection.
    reused: bool = False
    #: The TLS connection's ssl object (https), for ``--tls-info``.
    ssl_object: object | None = None
    #: Waiting for room on the origin's connections (inside the attempt's timeout).
    queued: bool = False
    #: Request bytes the connection still held, unwritten, when the wait for the answer
    #: was cut short: the peer was not reading them.
    unsent: int = 0
    #: --http2: the origin asked for HTTP/1.1 (or failed its first HTTP/2 request).
    downgraded: bool = False
    #: The attempt's timeout: waiting for an HTTP/2 stream is not counted in it.
    limit: asyncio.Timeout | None = None

    def phase(self, tls: bool) -> str:
        """Where the exchange was when it stopped: queue, dns, connect, tls, send, ttfb
        or body."""
        if self.headers is not None:
            return "body"
        if self.queued:
            return "queue"
        if self.reused or self.ready is not None or (self.tcp_end is not None and not tls):
            return "send" if self.unsent else "ttfb"
        if self.tcp_end is not None:
            return "tls"
        if self.dns_start is not None and self.dns_end is None:
            return "dns"
        return "connect"

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
    """Start timing one exchange."""
    return HopTiming(time.perf_counter())
