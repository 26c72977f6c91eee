"""The run's transport, built before its first request: a Router over the lean client,
or aiohttp for every request (``--http-client aiohttp``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING

from afetch.http.base import Request, Response, Transport
from afetch.http.proxy import SOCKS_SCHEMES, Proxies

if TYPE_CHECKING:
    from afetch.http.aiohttp_transport import AiohttpTransport
    from afetch.http.dns import Resolver
    from afetch.http.options import TransportOptions
    from afetch.http.timing import HopTiming
    from afetch.http.tls import TlsSessions


class Router:
    """Direct requests to the lean transport, proxied ones to aiohttp (made on first use)."""

    def __init__(
        self,
        lean: Transport,
        proxies: Proxies,
        options: TransportOptions,
        resolver: Resolver,
        tls: TlsSessions,
    ) -> None:
        self._lean = lean
        self._proxies = proxies
        self._options = options
        self._resolver = resolver
        self._tls = tls
        self._aiohttp: AiohttpTransport | None = None

    def send(self, request: Request, hop: HopTiming) -> AbstractAsyncContextManager[Response]:
        if not self._proxies:
            return self._lean.send(request, hop)
        proxy = self._proxies.for_url(request.url).proxy
        if proxy is None:
            return self._lean.send(request, hop)
        if proxy.scheme in SOCKS_SCHEMES:
            return self._lean.send(replace(request, proxy=proxy), hop)
        if self._aiohttp is None:
            self._aiohttp = self._open_aiohttp()
        return self._aiohttp.send(request, hop)

    def _open_aiohttp(self) -> AiohttpTransport:
        from afetch.http.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(self._options, self._proxies, self._resolver, self._tls)

    async def prepare(self) -> None:
        """With an http proxy set, aiohttp (~160 ms to import) and its session are made now."""
        await self._lean.prepare()
        if self._proxies and not self._proxies.only_socks and self._aiohttp is None:
            self._aiohttp = self._open_aiohttp()
            await self._aiohttp.prepare()

    async def close(self) -> None:
        try:
            await self._lean.close()
        finally:
            if self._aiohttp is not None:
                await self._aiohttp.close()


def resolver_for(options: TransportOptions) -> Resolver:
    """The run's one resolver: both transports look names up through it."""
    import socket

    from afetch.http.dns import Resolver

    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(options.ip_version, socket.AF_UNSPEC)
    return Resolver(
        pins=options.resolve,
        family=family,
        nameservers=options.dns_servers,
        policy=options.policy,
    )


def open_transport(options: TransportOptions) -> Transport:
    """The run's transport, as ``--http-client`` and the proxy settings ask."""
    from afetch.http.tls import TlsSessions

    proxies = Proxies.from_option(options.proxy, options.no_proxy)
    resolver = resolver_for(options)
    alpn = ("h2", "http/1.1") if options.http2 != "off" else ()
    rebuild = options.tls_options.context if options.tls_options is not None else None
    tls = TlsSessions(options.tls, alpn, rebuild)
    if options.http_client == "aiohttp":
        from afetch.http.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(options, proxies, resolver, tls)
    from afetch.http.lean.pool import Pool

    return Router(Pool.from_options(options, resolver, tls), proxies, options, resolver, tls)
