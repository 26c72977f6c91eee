"""An aiohttp session behind the Transport protocol (proxies, ``--http-client aiohttp``).

Everything aiohttp-specific lives here: the session and its limits, the
trace hooks and socket factory that fill a HopTiming, and the one function
(``translate``) that maps aiohttp's exceptions into afetch's tree. aiohttp
is imported only when a run first needs this transport.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import http_exceptions
from multidict import CIMultiDict, CIMultiDictProxy

from afetch.config import MAX_HEADER_COUNT, MAX_HEADER_LINE
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
from afetch.http.lean.protocol import text_of
from afetch.http.oserrors import connect_failure, describe
from afetch.http.request import check_headers, with_defaults
from afetch.http.timing import HopTiming
from afetch.http.transport import user_agent

if TYPE_CHECKING:
    from types import SimpleNamespace, TracebackType

    from afetch.config import Config
    from afetch.http.transport import Request
    from afetch.proxy import Proxies

#: The exchange the current task is timing: trace hooks and sockets report into it.
_current: ContextVar[HopTiming | None] = ContextVar("afetch_hop_timing", default=None)

# Phrases aiohttp's parser uses when a header or status line is over its size
# limit; it reports those, like a garbage status line, as a 400 response error.
_TOO_LARGE_HINTS = ("got more than", "too long", "too many headers", "header field too large")


class AiohttpTransport:
    """The Transport over one aiohttp ClientSession, made on the first request."""

    def __init__(self, config: Config, proxies: Proxies) -> None:
        self._config = config
        self._proxies = proxies
        self._user_agent = user_agent(config)
        self._session: aiohttp.ClientSession | None = None

    def send(self, request: Request, hop: HopTiming) -> _Exchange:
        if self._session is None:
            self._session = open_session(self._config)
        return _Exchange(self._session, self._proxies, request, hop, self._user_agent)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def open_session(config: Config) -> aiohttp.ClientSession:
    """The run's aiohttp session, with every limit set by afetch's options."""
    connector = aiohttp.TCPConnector(
        # The engine owns concurrency: size the pool so it never waits on its own cap.
        limit=config.concurrency,
        limit_per_host=0,
        ttl_dns_cache=300,
        ssl=config.tls if config.tls is not None else True,
        socket_factory=_socket_factory,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # asyncio.timeout in fetch.py is the one timeout authority; aiohttp's hidden
        # 300 s total is switched off so it cannot fire first.
        timeout=aiohttp.ClientTimeout(total=None, connect=config.connect_timeout),
        # A list fetcher must not carry cookies from one URL's response to the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Environment proxies are resolved once per run by afetch.proxy instead.
        trust_env=False,
        max_line_size=MAX_HEADER_LINE,
        max_field_size=MAX_HEADER_LINE,
        max_headers=MAX_HEADER_COUNT,
        trace_configs=[_trace_config()],
    )


class _Exchange:
    """``async with``: sends through the session, maps its failures, releases on exit."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        proxies: Proxies,
        request: Request,
        hop: HopTiming,
        agent: str,
    ) -> None:
        self._session = session
        self._proxies = proxies
        self._request = request
        self._hop = hop
        self._agent = agent
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> _Response:
        request, hop = self._request, self._hop
        headers = with_defaults(request.headers, self._agent)
        check_headers(headers)
        route = self._proxies.for_url(request.url)
        _current.set(hop)
        with aiohttp_errors():
            self._response = response = await self._session.request(
                request.method,
                request.url,
                headers=headers,
                data=request.body,
                allow_redirects=False,
                proxy=route.proxy,
                proxy_headers=route.headers,
            )
        connection = response.connection
        if connection is not None and connection.transport is not None:
            peer = connection.transport.get_extra_info("peername")
            hop.remote_ip = peer[0] if peer else hop.remote_ip
        return _Response(response)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._response.release()
            with aiohttp_errors():
                await self._response.wait_for_close()


class _Response:
    """aiohttp's ClientResponse as a transport Response, body errors mapped."""

    __slots__ = ("_inner",)

    def __init__(self, inner: aiohttp.ClientResponse) -> None:
        self._inner = inner

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
        with aiohttp_errors():
            return await self._inner.content.readany()

    async def read(self) -> bytes:
        with aiohttp_errors():
            return await self._inner.read()


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
    timing = _current.get()
    sock._timing = timing
    if timing is not None:
        timing.tcp_start = time.perf_counter()
        timing.tcp_end = None  # a happy-eyeballs retry on another address starts over
    return sock


def _trace_config() -> aiohttp.TraceConfig:
    """Hooks for the DNS phase, "connection ready" (after TLS), and reuse."""
    config = aiohttp.TraceConfig()
    config.on_dns_resolvehost_start.append(_mark("dns_start"))
    config.on_dns_resolvehost_end.append(_mark("dns_end"))
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
