"""The seam: a Transport sends one Request and hands back a streamed Response.

``fetch.py`` and the run layer use only what is here. Two transports meet
the protocol: the lean HTTP/1.1 client (``lean/``, the default for direct
requests) and an aiohttp session (``aiohttp_transport.py``: proxied
requests, and every request with ``--http-client aiohttp``). The Router
picks one per request. Transports raise only afetch's exception tree
(``afetch.errors``) and ``TimeoutError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from afetch import __version__
from afetch.http.decoding import ACCEPT_ENCODING
from afetch.http.timing import HopTiming
from afetch.proxy import Proxies

if TYPE_CHECKING:
    from afetch.config import Config
    from afetch.http.aiohttp_transport import AiohttpTransport
    from afetch.http.dns import Resolver
    from afetch.http.tls import TlsSessions

HeaderMap = CIMultiDict[str] | CIMultiDictProxy[str]


@dataclass(slots=True)
class Request:
    """One request as sent on one hop (fetch.py follows redirects itself)."""

    method: str
    url: URL
    headers: HeaderMap
    body: bytes | None = None


class Body(Protocol):
    async def readany(self) -> bytes:
        """The next piece of the decoded body; b"" at its end."""
        ...


class ResponseHeaders(Protocol):
    def get(self, name: str, /) -> str | None: ...
    def items(self) -> Iterable[tuple[str, str]]: ...


class Response(Protocol):
    """Status and headers once they arrived; the body streamed by ``content.readany()``."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def headers(self) -> ResponseHeaders: ...
    @property
    def charset(self) -> str | None: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def http_version(self) -> str: ...
    @property
    def location(self) -> str | None:
        """``Location`` as its bytes came: trimmed, non-ASCII and controls percent-encoded."""
        ...

    @property
    def content(self) -> Body: ...
    async def read(self) -> bytes: ...


class Transport(Protocol):
    """Sends requests; ``close()`` ends every connection it opened."""

    def send(self, request: Request, hop: HopTiming) -> AbstractAsyncContextManager[Response]:
        """``async with transport.send(...) as response``; the connection is released on exit."""
        ...

    async def prepare(self) -> None:
        """Build what the first request would otherwise build inside its own timeout."""
        ...

    async def close(self) -> None: ...


class Router:
    """Direct requests to the lean transport, proxied ones to aiohttp (made on first use)."""

    def __init__(
        self,
        lean: Transport,
        proxies: Proxies,
        config: Config,
        resolver: Resolver,
        tls: TlsSessions,
    ) -> None:
        self._lean = lean
        self._proxies = proxies
        self._config = config
        self._resolver = resolver
        self._tls = tls
        self._aiohttp: AiohttpTransport | None = None

    def send(self, request: Request, hop: HopTiming) -> AbstractAsyncContextManager[Response]:
        if not self._proxies or self._proxies.for_url(request.url).proxy is None:
            return self._lean.send(request, hop)
        if self._aiohttp is None:
            self._aiohttp = self._open_aiohttp()
        return self._aiohttp.send(request, hop)

    def _open_aiohttp(self) -> AiohttpTransport:
        from afetch.http.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(self._config, self._proxies, self._resolver, self._tls)

    async def prepare(self) -> None:
        """With a proxy set, aiohttp (~160 ms to import) and its session are made now."""
        await self._lean.prepare()
        if self._proxies and self._aiohttp is None:
            self._aiohttp = self._open_aiohttp()
            await self._aiohttp.prepare()

    async def close(self) -> None:
        try:
            await self._lean.close()
        finally:
            if self._aiohttp is not None:
                await self._aiohttp.close()


def default_headers(config: Config) -> list[tuple[str, str]]:
    """The headers every request gets unless it sets them: minus ``-H 'Name:'`` removals,
    and without User-Agent for ``-A ''``, as with curl."""
    agent = f"afetch/{__version__}" if config.user_agent is None else config.user_agent
    defaults = [("Accept", "*/*"), ("Accept-Encoding", ACCEPT_ENCODING), ("User-Agent", agent)]
    removed = set(config.removed_headers)
    return [(k, v) for k, v in defaults if k.lower() not in removed and (v or k != "User-Agent")]


def resolver_for(config: Config) -> Resolver:
    """The run's one resolver: both transports look names up through it."""
    import socket

    from afetch.http.dns import Resolver

    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(config.ip_version, socket.AF_UNSPEC)
    return Resolver(pins=config.resolve, family=family, nameservers=config.dns_servers)


def open_transport(config: Config) -> Transport:
    """The run's transport, as ``--http-client`` and the proxy settings ask."""
    from afetch.http.tls import TlsSessions

    proxies = Proxies.from_option(config.proxy)
    resolver = resolver_for(config)
    tls = TlsSessions(config.tls)
    if config.http_client == "aiohttp":
        from afetch.http.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(config, proxies, resolver, tls)
    from afetch.http.lean.pool import Pool

    return Router(Pool.from_config(config, resolver, tls), proxies, config, resolver, tls)
