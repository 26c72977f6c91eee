"""A new connection: addresses (dns.py), TCP with Happy Eyeballs, then TLS for https.

Happy Eyeballs (RFC 8305) is aiohappyeyeballs' (the library aiohttp uses):
addresses interleaved by family, the next attempt started 250 ms after the
previous one unless it already failed, the first to connect wins. One
address over plain HTTP is connected by the loop in one call (a quarter of
the CPU of the step-by-step way, which TLS needs to time its handshake).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import aiohappyeyeballs

from afetch.errors import ConnectError
from afetch.http.lean.protocol import Connection, Key, Owner
from afetch.http.oserrors import connect_failure, tls_failure
from afetch.http.tls import TlsSessions

if TYPE_CHECKING:
    import ssl

    from yarl import URL

    from afetch.http.dns import AddrInfo, Resolver
    from afetch.http.lean.h2link import H2Link
    from afetch.http.timing import HopTiming

    #: Makes the HTTP/2 protocol of a connection (--http2).
    LinkFactory = Callable[[], H2Link]

#: RFC 8305's recommended "connection attempt delay".
HAPPY_EYEBALLS_DELAY = 0.25


class Connector:
    """Opens connections under ``--connect-timeout``; TLS verified by default."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        tls: TlsSessions,
        connect_timeout: float | None = None,
    ) -> None:
        self._resolver = resolver
        self._tls = tls
        self._connect_timeout = connect_timeout

    async def connect(
        self,
        key: Key,
        hop: HopTiming,
        owner: Owner,
        proxy: URL | None = None,
        h2: LinkFactory | None = None,
        prior: bool = False,
    ) -> Connection | H2Link:
        """A connection to ``key``. With ``h2``, https offers h2 by ALPN and an HTTP/2
        link comes back if the server picks it; ``prior`` speaks HTTP/2 over http at once."""
        _, host, port = key
        try:
            async with asyncio.timeout(self._connect_timeout) as limit:
                if proxy is not None:
                    return await self._open_socks(key, hop, owner, proxy, h2, prior)
                return await self._open(key, hop, owner, h2, prior)
        except TimeoutError:
            if limit.expired():
                raise TimeoutError(
                    f"connect timeout: no connection to {host}:{port} "
                    f"within {self._connect_timeout:g}s"
                ) from None
            raise

    async def _open(
        self, key: Key, hop: HopTiming, owner: Owner, h2: LinkFactory | None, prior: bool
    ) -> Connection | H2Link:
        scheme, host, port = key
        addresses = await self._resolver.resolve(host, port, hop)
        if scheme == "http" and len(addresses) == 1 and addresses[0][0] == socket.AF_INET:
            return await self._open_plain(key, addresses[0][4], hop, owner, h2, prior)
        loop = asyncio.get_running_loop()
        hop.tcp_start, hop.tcp_end = time.perf_counter(), None
        try:
            sock = await aiohappyeyeballs.start_connection(
                addresses,
                happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
                interleave=1,
                loop=_NumericLoop(loop),  # type: ignore[arg-type]
            )
        except OSError as exc:
            raise connect_failure(host, port, exc) from exc
        hop.tcp_end = time.perf_counter()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return await self._over(sock, key, hop, owner, h2, prior)

    async def _over(
        self,
        sock: socket.socket,
        key: Key,
        hop: HopTiming,
        owner: Owner,
        h2: LinkFactory | None,
        prior: bool,
    ) -> Connection | H2Link:
        """The connection's protocol on a connected socket, after TLS for https."""
        scheme, host, port = key
        connection = Connection(owner, key)
        protocol = _protocol(connection, scheme, h2, prior)
        tls = None
        try:
            tls = await self._tls_for(scheme, h2)
            await asyncio.get_running_loop().create_connection(
                lambda: protocol,
                sock=sock,
                ssl=tls,
                server_hostname=host if tls is not None else None,
            )
        except OSError as exc:  # ssl.SSLError is an OSError
            sock.close()
            if tls is not None:  # TCP is connected: whatever failed, failed in TLS
                raise tls_failure(host, port, exc) from exc
            raise connect_failure(host, port, exc) from exc
        except BaseException:
            sock.close()
            raise
        hop.ready = time.perf_counter()
        return _opened(connection, protocol)

    async def _tls_for(self, scheme: str, h2: LinkFactory | None) -> ssl.SSLContext | None:
        if scheme != "https":
            return None
        return await (self._tls.context() if h2 is not None else self._tls.h1_context())

    async def _open_socks(
        self,
        key: Key,
        hop: HopTiming,
        owner: Owner,
        proxy: URL,
        h2: LinkFactory | None,
        prior: bool,
    ) -> Connection | H2Link:
        """Through a SOCKS proxy (python-socks): the proxy's address is looked up (and
        checked by the address policy) here; the target's too, unless the proxy resolves
        it (socks5h, socks4a): then dns_ms and Happy Eyeballs do not apply to it."""
        from python_socks import ProxyError, ProxyTimeoutError
        from python_socks.async_.asyncio import Proxy

        _, host, port = key
        proxy_port = proxy.port or 1080
        proxy_ip = (await self._resolver.resolve(proxy.raw_host or "", proxy_port, hop))[0][4][0]
        remote_dns = proxy.scheme in ("socks5h", "socks4a")
        target = host
        if not remote_dns:
            target = (await self._resolver.resolve(host, port))[0][4][0]
        kind = "socks5" if proxy.scheme.startswith("socks5") else "socks4"
        auth = f"{proxy.raw_user}:{proxy.raw_password or ''}@" if proxy.raw_user else ""
        address = f"[{proxy_ip}]" if ":" in proxy_ip else proxy_ip
        client = Proxy.from_url(f"{kind}://{auth}{address}:{proxy_port}", rdns=remote_dns)
        hop.tcp_start, hop.tcp_end = time.perf_counter(), None
        try:
            sock = await client.connect(dest_host=target, dest_port=port)
        except (ProxyError, ProxyTimeoutError, OSError) as exc:
            raise ConnectError(f"SOCKS proxy {proxy.raw_host}:{proxy_port}: {exc}") from exc
        hop.tcp_end = time.perf_counter()
        return await self._over(sock, key, hop, owner, h2, prior)

    async def _open_plain(
        self,
        key: Key,
        address: tuple[Any, ...],
        hop: HopTiming,
        owner: Owner,
        h2: LinkFactory | None,
        prior: bool,
    ) -> Connection | H2Link:
        scheme, host, port = key
        connection = Connection(owner, key)
        protocol = _protocol(connection, scheme, h2, prior)
        hop.tcp_start, hop.tcp_end = time.perf_counter(), None
        try:
            await asyncio.get_running_loop().create_connection(lambda: protocol, *address)
        except OSError as exc:
            raise connect_failure(host, port, exc) from exc
        hop.tcp_end = hop.ready = time.perf_counter()
        return _opened(connection, protocol)


def _protocol(
    connection: Connection, scheme: str, h2: LinkFactory | None, prior: bool
) -> asyncio.Protocol:
    """The protocol a new connection starts with: HTTP/2 at once for h2c with prior
    knowledge; else HTTP/1.1, which hands over to HTTP/2 if ALPN picks h2."""
    if h2 is None:
        return connection
    if scheme == "http":
        return h2() if prior else connection
    connection.upgrade = h2
    return connection


def _opened(connection: Connection, protocol: asyncio.Protocol) -> Connection | H2Link:
    """What the connection turned out to be: HTTP/1.1, or the HTTP/2 link that took it."""
    chosen = connection.upgraded or protocol
    return cast("Connection | H2Link", chosen)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _NumericLoop:
    """The running loop, with a ``sock_connect`` that never resolves a name.

    uvloop's ``sock_connect`` passes even a numeric address through
    ``getaddrinfo`` on libuv's thread pool: one thread hop per connection
    attempt, queued behind any other lookup. Addresses here are already
    resolved, so the socket connects directly.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def sock_connect(self, sock: socket.socket, address: AddrInfo | Any) -> None:
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        loop = self._loop
        writable: asyncio.Future[None] = loop.create_future()
        fd = sock.fileno()
        loop.add_writer(fd, _settle, writable)
        try:
            await writable
        finally:
            loop.remove_writer(fd)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))
