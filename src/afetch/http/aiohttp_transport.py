"""An aiohttp session behind the Transport protocol (proxies, ``--http-client aiohttp``).

The session and its limits, one exchange, and the response as the Transport
protocol reads it live here; the connector, sockets and trace hooks in
``aiohttp_connector.py``, the exception map (``translate``) in
``aiohttp_errors.py``. aiohttp is imported only when a run first needs it.
"""

from __future__ import annotations

import asyncio
import io
import ssl
from typing import TYPE_CHECKING

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from afetch.errors import (
    ConnectError,
    ResponseError,
    TlsError,
)
from afetch.http import decoding
from afetch.http.base import default_headers
from afetch.http.dns import ipv4_literal
from afetch.http.options import MAX_HEADER_COUNT, MAX_HEADER_LINE
from afetch.http.oserrors import tls_failure
from afetch.http.proxy import SOCKS_SCHEMES
from afetch.http.request import (
    basic_auth,
    check_request,
    location_text,
    prepared_headers,
    text_of,
)
from afetch.http.timing import HopTiming

if TYPE_CHECKING:
    from types import TracebackType

    from afetch.http.base import Request
    from afetch.http.dns import Resolver
    from afetch.http.options import TransportOptions
    from afetch.http.proxy import Proxies, Route
    from afetch.http.tls import TlsSessions

from afetch.http.aiohttp_connector import (
    GOODBYE_SECONDS,
    BoundedConnector,
    SharedResolver,
    current_hop,
    socket_factory,
    sockets_closed,
    trace_config,
)
from afetch.http.aiohttp_errors import aiohttp_errors

_OURS = ("Accept", "Accept-Encoding", "User-Agent")


class AiohttpTransport:
    """The Transport over one aiohttp ClientSession, made on the first request."""

    def __init__(
        self, options: TransportOptions, proxies: Proxies, resolver: Resolver, tls: TlsSessions
    ) -> None:
        self._options = options
        self._proxies = proxies
        self._resolver = resolver
        self._tls = tls
        self.defaults = default_headers(options)
        self._session: aiohttp.ClientSession | None = None

    def send(self, request: Request, hop: HopTiming) -> _Exchange:
        return _Exchange(self, request, hop)

    async def session(self) -> aiohttp.ClientSession:
        """The session, made on first use with the run's TLS context (loaded off the loop)."""
        if self._session is None:
            context = await self._tls.context()
            if self._session is None:
                self._session = open_session(self._options, self._resolver, context)
        return self._session

    async def prepare(self) -> None:
        """The session and its trust store, before the first request's clock starts."""
        await self.session()

    def route(self, request: Request) -> Route:
        return self._proxies.for_url(request.url)

    async def check_address(self, request: Request, route: Route) -> None:
        """-4/-6 and the address policy for what aiohttp dials without asking a resolver
        (an IP literal): the target's, or the proxy's when proxied."""
        if not (self._options.ip_version or self._options.policy):
            return
        url = route.proxy or request.url
        if url.raw_host:
            await self._resolver.resolve(url.raw_host, url.port or 0)

    def remember_tls(self, host: str, ssl_object: object) -> None:
        self._tls.remember(host, ssl_object)

    async def close(self) -> None:
        try:
            if self._session is not None:
                await self._session.close()
                await sockets_closed(GOODBYE_SECONDS)
        finally:
            await self._resolver.close()


def open_session(
    options: TransportOptions, resolver: Resolver, context: ssl.SSLContext
) -> aiohttp.ClientSession:
    """The run's aiohttp session, with every limit set by afetch's options."""
    connector = BoundedConnector(
        max_idle=options.idle_connections,
        # The engine owns concurrency: size the pool so it never waits on its own cap.
        limit=options.concurrency,
        limit_per_host=0,
        # Names go through afetch's resolver (c-ares, coalesced, cached, --resolve).
        resolver=SharedResolver(resolver),
        use_dns_cache=False,
        ssl=context,
        socket_factory=socket_factory,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # asyncio.timeout in fetch.py is the one timeout authority; aiohttp's hidden
        # 300 s total is switched off so it cannot fire first.
        timeout=aiohttp.ClientTimeout(total=None, connect=options.connect_timeout),
        # A list fetcher must not carry cookies from one URL's response to the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Environment proxies are resolved once per run by afetch.http.proxy instead.
        trust_env=False,
        max_line_size=MAX_HEADER_LINE,
        max_field_size=MAX_HEADER_LINE,
        max_headers=MAX_HEADER_COUNT,
        # Bodies are decoded by afetch.http.decoding, as in the lean transport: stacked
        # and truncated streams are judged alike, and bombs inflate in bounded pieces.
        auto_decompress=False,
        trace_configs=[trace_config()],
        response_class=_PeerResponse,
    )


def _payload(body: bytes | None, chunked: bool) -> bytes | io.BytesIO | None:
    """A large body as a stream: aiohttp warns (ResourceWarning) that raw bytes of over
    a megabyte may block the loop while it writes them."""
    if body is None:
        return None if not chunked else b""
    return io.BytesIO(body) if len(body) > _LARGE_BODY else body


_LARGE_BODY = 1 << 20


class _Exchange:
    """``async with``: sends through the session, maps its failures, releases on exit."""

    def __init__(self, transport: AiohttpTransport, request: Request, hop: HopTiming) -> None:
        self._transport = transport
        self._request = request
        self._hop = hop
        self._response: _PeerResponse | None = None

    async def __aenter__(self) -> _Response:
        request, hop = self._request, self._hop
        check_request(request)
        headers, host, chunked = prepared_headers(request.headers, self._transport.defaults)
        if host is not None:
            headers.append(("Host", host))
        route = self._transport.route(request)
        if route.proxy is not None and route.proxy.scheme in SOCKS_SCHEMES:
            raise ConnectError(
                "SOCKS proxies go through the default client, not --http-client aiohttp"
            )
        if route.headers and request.url.scheme == "http":
            # A plain-http request goes to the proxy itself: its credentials ride in
            # the request (aiohttp sends proxy_headers only in an https CONNECT).
            headers.extend(route.headers.items())
        await self._transport.check_address(request, route)
        session = await self._transport.session()
        current_hop.set(hop)
        try:
            response = await self._send(session, request, headers, chunked, route)
        except (ConnectError, TlsError) as exc:
            if (
                request.url.scheme == "https"
                and route.proxy is None
                and hop.tcp_end
                and not hop.ready
            ):
                # TCP connected, TLS never got ready: whatever failed, failed in TLS.
                cause = exc.__cause__ or exc
                if isinstance(cause, aiohttp.ClientConnectorError):
                    cause = cause.os_error
                url = request.url
                raise tls_failure(url.raw_host or "", url.port or 443, cause) from exc
            raise
        assert isinstance(response, _PeerResponse)  # the session's response_class
        self._response = response
        try:
            if not 100 <= response.status <= 599 and response.status != 999:  # LinkedIn
                raise ResponseError(f"status {response.status:03d} is not an HTTP status (100-599)")
            return _Response(response)
        except ResponseError:
            response.close()
            raise

    async def _send(
        self,
        session: aiohttp.ClientSession,
        request: Request,
        headers: list[tuple[str, str]],
        chunked: bool,
        route: Route,
    ) -> aiohttp.ClientResponse:
        url = request.url
        host = url.raw_host or ""
        canonical = ipv4_literal(host) if host[:1].isdigit() else None
        if canonical is not None and canonical != host:
            # 127.1, 2130706433: addresses to curl and to afetch's resolver, refused by
            # aiohttp's URL check; the canonical form is dialled, the Host stays as typed.
            if not any(name.lower() == "host" for name, _ in headers):
                port = url.explicit_port
                headers.append(("Host", host if port is None else f"{host}:{port}"))
            url = url.with_host(canonical)
        if url.raw_user is not None:
            # URL credentials become the Authorization header, as in the lean client,
            # unless one is set (-u wins, as in curl); aiohttp refuses to see both.
            if not any(name.lower() == "authorization" for name, _ in headers):
                headers.append(("Authorization", basic_auth(url)))
            url = url.with_user(None)
        with aiohttp_errors():
            return await session.request(
                request.method,
                url,
                headers=headers,
                data=_payload(request.body, chunked),
                chunked=chunked or None,
                allow_redirects=False,
                proxy=route.proxy,
                proxy_headers=route.headers,
                skip_auto_headers=_OURS,  # sent (or, as -H 'Name:' asks, not) by afetch
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        response = self._response
        if response is None:
            return
        response.release()
        if response.ssl_object is not None and self._request.url.raw_host:
            # The body is read: a TLS 1.3 session ticket has arrived by now.
            self._transport.remember_tls(self._request.url.raw_host, response.ssl_object)
        with aiohttp_errors():
            await response.wait_for_close()


class _PeerResponse(aiohttp.ClientResponse):
    """Notes who answered (remote_ip) and the TLS session, while the connection is known.

    aiohttp hands a response with a short body back without its connection:
    ``start`` is the one place both are seen.
    """

    ssl_object: object | None = None

    async def start(self, connection: aiohttp.connector.Connection) -> _PeerResponse:
        transport = connection.transport
        hop = current_hop.get()
        if transport is not None:
            peer = transport.get_extra_info("peername")
            if hop is not None and peer:
                hop.remote_ip = peer[0]
            self.ssl_object = transport.get_extra_info("ssl_object")
            if hop is not None:
                hop.ssl_object = self.ssl_object
        try:
            await super().start(connection)
        except asyncio.CancelledError:
            if transport is not None and (unsent := transport.get_write_buffer_size()):
                if hop is not None:  # the request body still going: the send phase
                    hop.unsent = unsent
                transport.abort()  # a close would hold the socket until the peer reads
            raise
        return self


class _Response:
    """aiohttp's ClientResponse as a transport Response, body errors mapped."""

    __slots__ = ("_decoder", "_ended", "_fed", "_inner")

    def __init__(self, inner: aiohttp.ClientResponse) -> None:
        self._inner = inner
        self._decoder = (
            None  # these have no body to decode
            if inner.method == "HEAD" or inner.status in (204, 304)
            else decoding.decoder_for(
                ", ".join(inner.headers.getall("Content-Encoding", ())) or None
            )
        )
        self._ended = False
        self._fed = False

    @property
    def status(self) -> int:
        return self._inner.status

    @property
    def reason(self) -> str | None:
        reason = self._inner.reason
        return None if reason is None else _clean(reason)

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        headers = self._inner.headers
        if all(value.isascii() for value in headers.values()):
            return headers
        return CIMultiDictProxy(CIMultiDict((name, _clean(v)) for name, v in headers.items()))

    @property
    def charset(self) -> str | None:
        return self._inner.charset

    @property
    def location(self) -> str | None:
        if "Location" not in self._inner.headers:
            return None
        raw = next((v for k, v in self._inner.raw_headers if k.lower() == b"location"), None)
        return None if raw is None else location_text(raw)

    @property
    def content_length(self) -> int | None:
        return self._inner.content_length

    @property
    def http_version(self) -> str:
        version = self._inner.version
        return "1.1" if version is None else f"{version.major}.{version.minor}"

    @property
    def content(self) -> _Response:
        return self

    async def readany(self) -> bytes:
        decoder = self._decoder
        if decoder is None:
            with aiohttp_errors():
                return await self._inner.content.readany()
        while True:
            if decoded := decoder.pull():
                return decoded
            if self._ended:
                return b""
            with aiohttp_errors():
                piece = await self._inner.content.readany()
            if piece:
                self._fed = True
                decoder.push(piece)
            else:
                self._ended = True
                if self._fed:  # an empty body (length 0) has no stream to end
                    decoder.end()

    async def read(self) -> bytes:
        pieces = []
        while piece := await self.readany():
            pieces.append(piece)
        return b"".join(pieces)


def _clean(text: str) -> str:
    """aiohttp decodes header bytes with surrogateescape; afetch's rule is UTF-8, else Latin-1.

    A lone surrogate cannot be written as JSON: left as is, one byte of a
    header would end the run.
    """
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text_of(text.encode("utf-8", "surrogateescape"))
    return text
