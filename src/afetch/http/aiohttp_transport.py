"""An aiohttp session behind the Transport protocol (proxies, ``--http-client aiohttp``).

Everything aiohttp-specific lives here: the session and its limits, the
trace hooks and socket factory that fill a HopTiming, and the one function
(``translate``) that maps aiohttp's exceptions into afetch's tree. aiohttp
is imported only when a run first needs this transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import socket
import ssl
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

import aiohttp
from aiohttp import http_exceptions
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDict, CIMultiDictProxy

from afetch.errors import (
    ConnectError,
    DnsError,
    ErrorKind,
    FetchFailure,
    RequestError,
    ResponseError,
    TlsError,
    TooLargeError,
)
from afetch.http import decoding
from afetch.http.base import default_headers
from afetch.http.options import MAX_HEADER_COUNT, MAX_HEADER_LINE
from afetch.http.oserrors import connect_failure, describe, tls_failure
from afetch.http.request import (
    basic_auth,
    check_request,
    location_text,
    prepared_headers,
    text_of,
)
from afetch.http.timing import HopTiming

if TYPE_CHECKING:
    from types import SimpleNamespace, TracebackType

    from afetch.http.base import Request
    from afetch.http.dns import Resolver
    from afetch.http.options import TransportOptions
    from afetch.http.proxy import Proxies, Route
    from afetch.http.tls import TlsSessions

#: The exchange the current task is timing: trace hooks and sockets report into it.
_OURS = ("Accept", "Accept-Encoding", "User-Agent")
_current: ContextVar[HopTiming | None] = ContextVar("afetch_hop_timing", default=None)

# Phrases aiohttp's parser uses when a header or status line is over its size
# limit; it reports those, like a garbage status line, as a 400 response error.
_TOO_LARGE_HINTS = ("got more than", "too long", "too many headers", "header field too large")


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

    async def check_family(self, request: Request) -> None:
        """-4/-6 for an IP literal, which aiohttp connects to without asking a resolver."""
        if self._options.ip_version and request.url.raw_host:
            await self._resolver.resolve(request.url.raw_host, request.url.port or 0)

    def remember_tls(self, host: str, ssl_object: object) -> None:
        self._tls.remember(host, ssl_object)

    async def close(self) -> None:
        try:
            if self._session is not None:
                await self._session.close()
                await _sockets_closed(_GOODBYE_SECONDS)
        finally:
            await self._resolver.close()


def open_session(
    options: TransportOptions, resolver: Resolver, context: ssl.SSLContext
) -> aiohttp.ClientSession:
    """The run's aiohttp session, with every limit set by afetch's options."""
    connector = _BoundedConnector(
        max_idle=options.idle_connections,
        # The engine owns concurrency: size the pool so it never waits on its own cap.
        limit=options.concurrency,
        limit_per_host=0,
        # Names go through afetch's resolver (c-ares, coalesced, cached, --resolve).
        resolver=_SharedResolver(resolver),
        use_dns_cache=False,
        ssl=context,
        socket_factory=_socket_factory,
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
        trace_configs=[_trace_config()],
        response_class=_PeerResponse,
    )


def _payload(body: bytes | None, chunked: bool) -> bytes | io.BytesIO | None:
    """A large body as a stream: aiohttp warns (ResourceWarning) that raw bytes of over
    a megabyte may block the loop while it writes them."""
    if body is None:
        return None if not chunked else b""
    return io.BytesIO(body) if len(body) > _LARGE_BODY else body


_LARGE_BODY = 1 << 20


class _HeadTolerantHandler(ResponseHandler):
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


class _BoundedConnector(aiohttp.TCPConnector):
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
            handler = functools.partial(_HeadTolerantHandler, loop=self._loop)
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
        if route.headers and request.url.scheme == "http":
            # A plain-http request goes to the proxy itself: its credentials ride in
            # the request (aiohttp sends proxy_headers only in an https CONNECT).
            headers.extend(route.headers.items())
        await self._transport.check_family(request)
        session = await self._transport.session()
        _current.set(hop)
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
            if not 100 <= response.status <= 599:
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
        hop = _current.get()
        if transport is not None:
            peer = transport.get_extra_info("peername")
            if hop is not None and peer:
                hop.remote_ip = peer[0]
            self.ssl_object = transport.get_extra_info("ssl_object")
            if hop is not None:
                hop.ssl_object = self.ssl_object
        await super().start(connection)
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


@contextlib.contextmanager
def aiohttp_errors() -> Iterator[None]:
    """Inside: any aiohttp (or socket/TLS) failure leaves as afetch's exception."""
    try:
        yield
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        raise mapped from exc


def translate(exc: BaseException) -> BaseException | None:
    """aiohttp's exception → afetch's, most specific class first; None: not aiohttp's."""
    if isinstance(exc, TimeoutError):
        # ServerTimeoutError (a connection error too) and its kin: a timeout.
        return TimeoutError(str(exc) or "timed out")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return DnsError(f"{exc.host}:{exc.port}: {describe(exc.os_error)}")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
        return TlsError(describe(cause))
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return TlsError(f"certificate fingerprint mismatch for {exc.host}:{exc.port}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return connect_failure(exc.host, exc.port or 0, exc.os_error)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return FetchFailure(ErrorKind.TOO_MANY_REDIRECTS, exc.message or "too many redirects")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return ConnectError(f"proxy refused: {exc.status} {exc.message}")
    if isinstance(exc, aiohttp.ClientResponseError | http_exceptions.HttpProcessingError):
        return _parse_failure(exc)
    if isinstance(exc, aiohttp.RedirectClientError):
        return ResponseError(f"bad redirect: {exc}")  # the server's Location, not the input
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return RequestError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ResponseError("server disconnected without sending a response")
    if isinstance(exc, aiohttp.ClientError):
        # Payload errors, resets and disconnects after the request was sent: the
        # response could not be read as HTTP.
        return ResponseError(f"{type(exc).__name__}: {exc}".rstrip(": "))
    if isinstance(exc, socket.gaierror):
        return DnsError(describe(exc))
    if isinstance(exc, OSError):
        return ConnectError(describe(exc))
    return None


def _parse_failure(exc: BaseException) -> ResponseError:
    message = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    if isinstance(exc, http_exceptions.LineTooLong) or any(
        hint in message.lower() for hint in _TOO_LARGE_HINTS
    ):
        return TooLargeError(message)
    return ResponseError(f"malformed response: {message}")


# -- timing: trace hooks and a socket that notes when its connect completed ------

#: Sockets the session made (weakly held): at close, TLS ones still say goodbye.
_open_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
#: How long closing waits for TLS connections to exchange close_notify.
_GOODBYE_SECONDS = 0.25


async def _sockets_closed(limit: float) -> None:
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


def _socket_factory(addr_info: tuple[Any, ...]) -> socket.socket:
    """For ``TCPConnector(socket_factory=...)``."""
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = _TimedSocket(family, type_, proto)
    _open_sockets.add(sock)
    timing = _current.get()
    sock._timing = timing
    if timing is not None:
        timing.tcp_start = time.perf_counter()
        timing.tcp_end = None  # a happy-eyeballs retry on another address starts over
    return sock


class _SharedResolver(AbstractResolver):
    """aiohttp's resolver interface over the run's Resolver (which times the lookup)."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            infos = await self._resolver.resolve(host, port, _current.get())
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


def _trace_config() -> aiohttp.TraceConfig:
    """Hooks for "connection ready" (after TLS) and reuse; the resolver times DNS."""
    config = aiohttp.TraceConfig()
    config.on_connection_create_end.append(_mark("ready"))
    config.on_connection_reuseconn.append(_reused)
    return config


def _mark(field: str) -> Any:
    async def hook(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        timing = _current.get()
        if timing is not None:
            setattr(timing, field, time.perf_counter())

    return hook


async def _reused(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    timing = _current.get()
    if timing is not None:
        timing.reused = True
