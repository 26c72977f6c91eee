"""A lean HTTP/1.1 client for direct requests: asyncio protocols + llhttp.

aiohttp's ``ClientSession.request`` spends ~150 µs of CPU per request here
(URL and header merging, cookie and trace plumbing, connector bookkeeping,
stream objects), more than curl spends on a whole request. afetch already
follows redirects, applies timeouts and retries itself, so all it needs of
a client is: a pooled keep-alive connection, one request written, one
response parsed and streamed with flow control. This module does only that;
llhttp (through httptools, the parser uvicorn uses) does the parsing, so
malformed responses are judged as strictly as by aiohttp's own C parser.

Requests through a proxy still go through the aiohttp session (fetch.py).
Failures are raised as errors.py's ConnectError, ResponseError and
RequestError (or TimeoutError), which it maps to error kinds.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import time
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from afetch.config import DEFAULT_PORTS, MAX_HEADER_COUNT, MAX_HEADER_LINE
from afetch.errors import ConnectError, RequestError, ResponseError

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable
    from types import TracebackType

    from yarl import URL

    from afetch.timing import HopTiming

#: Idle connections older than this are not reused (nginx closes at 75 s, many at 5 to 60 s).
KEEPALIVE_SECONDS = 15.0
#: At the end of a run, how long TLS connections may take to say goodbye.
_GOODBYE_SECONDS = 0.25
DNS_TTL_SECONDS = 300.0
#: Body bytes buffered per response before reading from its socket pauses.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
#: Largest piece a compressed body is inflated into at a time (bounds gzip bombs).
_INFLATE_PIECE = 256 * 1024
#: Bytes of response head accepted in all (status line and every field at their limits).
_MAX_HEAD = MAX_HEADER_LINE * (MAX_HEADER_COUNT + 1)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


class _NotAnswered(ResponseError):
    """The server closed the connection before any byte of a response."""


class _HeadDone(Exception):
    """Stops the parser after a HEAD response's headers: such a response has no body."""


class Pool:
    """Keep-alive connections per (scheme, host, port), and a DNS cache."""

    def __init__(
        self,
        *,
        user_agent: str,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float | None = None,
        max_idle: int = 100,
    ) -> None:
        self._user_agent = user_agent
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._max_idle = max(1, max_idle)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_order: dict[_Connection, None] = {}  # oldest first, for eviction
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}
        self._blocks: dict[int, tuple[object, str]] = {}  # rendered shared header blocks
        self._open_connections: set[_Connection] = set()
        self._all_lost = asyncio.Event()  # set once closed and every connection is gone
        self._closed = False

    def request(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str] | CIMultiDictProxy[str],
        body: bytes | None,
        hop: HopTiming,
    ) -> _Exchange:
        """``async with pool.request(...) as response``: the connection goes back on exit."""
        return _Exchange(self, method, url, headers, body, hop)

    async def close(self) -> None:
        self._closed = True
        # Every open connection, idle or not: one still held by a request that a
        # stop cancelled at an awkward moment must not outlive the run.
        for connection in list(self._open_connections):
            connection.close()
        self._idle.clear()
        self._idle_order.clear()
        if not self._open_connections:
            return
        # Plain TCP closes on the next loop pass; TLS first sends its close_notify
        # and waits for the server's. Give that a moment, then hang up on the rest:
        # a transport still open when the loop closes is an "unclosed transport".
        try:
            await asyncio.wait_for(self._all_lost.wait(), _GOODBYE_SECONDS)
        except TimeoutError:
            for connection in list(self._open_connections):
                connection.abort()
            await asyncio.sleep(0)

    def _forget(self, connection: _Connection) -> None:
        """A connection is gone; the last one after close() ends the wait there."""
        self._open_connections.discard(connection)
        if self._closed and not self._open_connections:
            self._all_lost.set()

    async def _send(
        self,
        method: str,
        url: URL,
        headers: CIMultiDict[str] | CIMultiDictProxy[str],
        body: bytes | None,
        hop: HopTiming,
    ) -> Response:
        scheme, host = url.scheme, url.raw_host or ""
        port = url.port or DEFAULT_PORTS[scheme]
        key = (scheme, host, port)
        head = self._render(method, url, host, port, headers, body)
        while True:
            connection = self._take_idle(key)
            reused = connection is not None
            if connection is None:
                connection = await self._connect(key, hop)
            response = Response(connection, method, url)
            connection.send(head, body)
            try:
                await response.wait_for_headers()
            except _NotAnswered:
                connection.close()
                if reused:  # the server had closed it while idle: once more on a new one
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            return response

    def _render(
        self,
        method: str,
        url: URL,
        host: str,
        port: int,
        headers: CIMultiDict[str] | CIMultiDictProxy[str],
        body: bytes | None,
    ) -> bytes:
        if ":" in host:
            host = f"[{host}]"
        authority = host if port == DEFAULT_PORTS[url.scheme] else f"{host}:{port}"
        lines = f"{method} {url.raw_path_qs or '/'} HTTP/1.1\r\nHost: {authority}\r\n"
        lines += self._header_block(headers)
        if url.raw_user is not None and "Authorization" not in headers:
            lines += f"Authorization: {_basic(url)}\r\n"
        if body is not None:
            if "Content-Type" not in headers:
                lines += "Content-Type: application/octet-stream\r\n"
            lines += f"Content-Length: {len(body)}\r\n"
        elif method in _BODY_METHODS:
            lines += "Content-Length: 0\r\n"
        return (lines + "\r\n").encode()

    def _header_block(self, headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> str:
        """The request's own header lines; the run's shared set is rendered once."""
        shared = isinstance(headers, CIMultiDictProxy)
        if shared and (cached := self._blocks.get(id(headers))) is not None:
            return cached[1]
        block = ""
        for name, value in _with_defaults(headers, self._user_agent):
            if name.lower() == "content-length":
                continue  # framing is afetch's, from the body it sends
            if any(c in name or c in value for c in _FORBIDDEN_IN_HEADERS):
                raise RequestError(f"header {name!r} contains a line break or NUL")
            block += f"{name}: {value}\r\n"
        if shared:
            self._blocks[id(headers)] = (headers, block)  # holding it keeps the id unique
        return block

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            del self._idle_order[connection]
            if not connection.closed and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
        return None

    def _put_idle(self, connection: _Connection) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.key, []).append(connection)
        self._idle_order[connection] = None
        if len(self._idle_order) > self._max_idle:
            oldest = next(iter(self._idle_order))
            del self._idle_order[oldest]
            self._idle[oldest.key].remove(oldest)
            oldest.close()

    async def _connect(self, key: tuple[str, str, int], hop: HopTiming) -> _Connection:
        _, host, port = key
        try:
            async with asyncio.timeout(self._connect_timeout) as limit:
                return await self._open(key, hop)
        except TimeoutError:
            if limit.expired():
                raise TimeoutError(
                    f"connect timeout: no connection to {host}:{port} "
                    f"within {self._connect_timeout:g}s"
                ) from None
            raise

    async def _open(self, key: tuple[str, str, int], hop: HopTiming) -> _Connection:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        addresses = await self._resolve(host, port, hop)
        if scheme == "http" and all(family == socket.AF_INET for family, *_ in addresses):
            return await self._open_plain(key, addresses, hop)
        sock: socket.socket | None = None
        failure: OSError = OSError(f"no address for {host}")
        for family, type_, proto, _, address in addresses:
            candidate = socket.socket(family, type_, proto)
            candidate.setblocking(False)
            hop.tcp_start, hop.tcp_end = time.perf_counter(), None
            try:
                await loop.sock_connect(candidate, address)
            except OSError as exc:
                candidate.close()
                failure = exc
                continue
            except BaseException:
                candidate.close()
                raise
            hop.tcp_end = time.perf_counter()
            sock = candidate
            break
        if sock is None:
            raise ConnectError(host, port, failure)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self, key)
        tls = self._tls_context() if scheme == "https" else None
        try:
            await loop.create_connection(
                lambda: connection,
                sock=sock,
                ssl=tls,
                server_hostname=host if tls is not None else None,
            )
        except OSError as exc:  # ssl.SSLError is an OSError
            sock.close()
            raise ConnectError(host, port, exc) from exc
        except BaseException:
            sock.close()
            raise
        hop.ready = time.perf_counter()
        return connection

    async def _open_plain(
        self, key: tuple[str, str, int], addresses: list[Any], hop: HopTiming
    ) -> _Connection:
        """Plain HTTP over IPv4: the loop makes socket and transport in one call.

        A quarter of the CPU of the step-by-step way above (which TLS needs, to
        time the handshake apart): 35-50 µs a connection instead of 140-160.
        """
        _, host, port = key
        loop = asyncio.get_running_loop()
        failure: OSError = OSError(f"no address for {host}")
        for *_, address in addresses:
            connection = _Connection(self, key)
            hop.tcp_start, hop.tcp_end = time.perf_counter(), None
            try:
                await loop.create_connection(lambda: connection, *address)  # noqa: B023
            except OSError as exc:
                failure = exc
                continue
            hop.tcp_end = hop.ready = time.perf_counter()
            return connection
        raise ConnectError(host, port, failure)

    async def _resolve(self, host: str, port: int, hop: HopTiming) -> list[Any]:
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        literal = _ip_literal(host)
        if literal is not None:
            known = [(literal, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
            self._dns[(host, port)] = (float("inf"), known)
            return known
        hop.dns_start = time.perf_counter()
        try:
            addresses: list[Any] = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise ConnectError(host, port, exc) from exc
        hop.dns_end = time.perf_counter()
        self._dns[(host, port)] = (time.monotonic() + DNS_TTL_SECONDS, addresses)
        return addresses

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import ssl

            self._tls = ssl.create_default_context()
        return self._tls


class _Exchange:
    """The async context manager ``Pool.request`` returns."""

    __slots__ = ("_args", "_pool", "_response")

    def __init__(self, pool: Pool, *args: Any) -> None:
        self._pool = pool
        self._args = args
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._pool._send(*self._args)
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._response.release()


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; hands what it receives to the current response."""

    def __init__(self, pool: Pool, key: tuple[str, str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        self.pool._open_connections.add(self)  # until connection_lost: close() ends them all

    def send(self, head: bytes, body: bytes | None) -> None:
        assert self.transport is not None
        if body and len(body) > 16 * 1024:
            self.transport.write(head)
            self.transport.write(body)
        else:
            self.transport.write(head + body if body else head)

    def data_received(self, data: bytes) -> None:
        if self.response is not None:
            self.response.feed(data)
        else:  # bytes while idle: nothing sane to do with them but to hang up
            self.close()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost tells the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        if self.response is not None:
            self.response.lost(exc)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Response:
    """Status and headers once parsed; the body streamed by ``content.readany()``.

    Shaped like the parts of ``aiohttp.ClientResponse`` that fetch.py reads.
    """

    __slots__ = (
        "_answered",
        "_buffered",
        "_chunks",
        "_complete",
        "_connection",
        "_decoder",
        "_error",
        "_fields",
        "_head_bytes",
        "_head_only",
        "_headers_done",
        "_interim",
        "_keep_alive",
        "_parser",
        "_paused",
        "_reason",
        "_received",
        "_until_close",
        "_waiter",
        "headers",
        "reason",
        "status",
        "url",
    )

    def __init__(self, connection: _Connection, method: str, url: URL) -> None:
        self.url = url
        self.status = 0
        self.reason: str | None = None
        self.headers = _NO_HEADERS
        self._connection: _Connection | None = connection
        # The parser holds this response's callbacks: a cycle, broken by release()
        # so a finished response is freed at once, not by the cycle collector.
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self._head_only = method == "HEAD"
        self._fields: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._head_bytes = 0
        self._headers_done = False
        self._interim = False  # a 1xx response is being skipped
        self._until_close = False
        self._complete = False
        self._keep_alive = False
        self._error: BaseException | None = None
        self._answered = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._decoder: Any = None
        self._received = 0
        self._waiter: asyncio.Future[None] | None = None
        connection.response = self

    # -- what fetch.py reads ------------------------------------------------

    @property
    def content(self) -> Response:
        """aiohttp's ``response.content.readany()`` reads the body; so does ours."""
        return self

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def charset(self) -> str | None:
        return _charset(self.headers.get("Content-Type"))

    async def readany(self) -> bytes:
        """The next piece of the (decoded) body; b"" at its end."""
        while True:
            if self._chunks:
                piece = self._chunks.popleft()
                self._buffered -= len(piece)
                if self._paused and self._buffered <= _LOW_WATER and self._connection:
                    self._paused = False
                    self._connection.resume_reading()
                if self._decoder is None:
                    return piece
                if decoded := self._inflate(piece):
                    return decoded
                continue
            if self._error is not None:
                raise self._error
            if self._complete:
                return self._inflate_rest()
            await self._wait()

    async def read(self) -> bytes:
        pieces = []
        while piece := await self.readany():
            pieces.append(piece)
        return b"".join(pieces)

    def release(self) -> None:
        """Back to the pool if the whole response was read and both sides keep it open."""
        connection, self._connection = self._connection, None
        self._parser = None
        if connection is None:
            return
        connection.response = None
        if self._complete and self._keep_alive and not self._chunks and not connection.closed:
            connection.pool._put_idle(connection)
        else:
            connection.close()

    # -- fed by the connection ------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._answered = True
        if not self._headers_done:
            self._head_bytes += len(data)
        if self._parser is None:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _HeadDone):
                # Reusable only if nothing (a stray body) came after the headers.
                self._keep_alive &= data.find(b"\r\n\r\n") == len(data) - 4
                return
            self._fail(cause if isinstance(cause, ResponseError) else ResponseError(str(exc)))
            return
        except httptools.HttpParserUpgrade:
            self._keep_alive = False
            self._finish()
            return
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"malformed response: {_parser_message(exc)}"))
            return
        if not self._headers_done and self._head_bytes > _MAX_HEAD:
            self._fail(ResponseError("response head too large", too_large=True))

    def lost(self, exc: Exception | None) -> None:
        if self._complete or self._error is not None:
            self._wake()
            return
        if self._headers_done and self._until_close and exc is None:
            self._finish()  # a body delimited by the end of the connection
            return
        if not self._answered:
            self._fail(_NotAnswered("server closed the connection without sending a response"))
        elif not self._headers_done:
            self._fail(ResponseError(f"connection {_how(exc)} in the response head"))
        else:
            expected = self.content_length
            told = f" of {expected}" if expected is not None else ""
            self._fail(
                ResponseError(f"connection {_how(exc)} after {self._received}{told} body bytes")
            )

    # -- llhttp callbacks ---------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason += reason
        if len(self._reason) > MAX_HEADER_LINE:
            raise ResponseError("status line too long", too_large=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > MAX_HEADER_LINE:
            raise ResponseError(f"header field too large ({len(value)} bytes)", too_large=True)
        if len(self._fields) >= MAX_HEADER_COUNT:
            raise ResponseError(f"too many headers (over {MAX_HEADER_COUNT})", too_large=True)
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None  # callbacks run inside feed()
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue, 103 Early Hints: the answer follows
            return
        self.status = status
        self.reason = _text(self._reason) or None
        self.headers = headers = Headers(self._fields)
        self._headers_done = True
        self._keep_alive = self._parser.should_keep_alive()
        encoding = (headers.get("Content-Encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = _Deflate()
        self._wake()
        if self._head_only:  # llhttp cannot be told; 204 and 304 it knows itself
            self._finish()
            raise _HeadDone
        self._until_close = (
            headers.get("Content-Length") is None and headers.get("Transfer-Encoding") is None
        )

    def on_body(self, body: bytes) -> None:
        self._received += len(body)
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self._connection:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._fields, self._reason, self._head_bytes = [], b"", 0
            return
        assert self._parser is not None
        self._keep_alive = self._keep_alive and self._parser.should_keep_alive()
        self._finish()

    # -- internals ----------------------------------------------------------------

    async def wait_for_headers(self) -> None:
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            # _wait() inlined: one coroutine frame less on every resume of the request.
            self._waiter = waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        if self._connection is not None:
            self._connection.close()
        self._wake()

    def _inflate(self, piece: bytes) -> bytes:
        try:
            decoded: bytes = self._decoder.decompress(piece, _INFLATE_PIECE)
        except zlib.error as exc:
            raise ResponseError(f"cannot decode the compressed body: {exc}") from exc
        tail = self._decoder.unconsumed_tail
        if tail:  # more to inflate from this piece: keep it first in line
            self._chunks.appendleft(tail)
            self._buffered += len(tail)
        return decoded

    def _inflate_rest(self) -> bytes:
        if self._decoder is None:
            return b""
        decoder, self._decoder = self._decoder, None
        try:
            rest: bytes = decoder.flush()
        except zlib.error as exc:
            raise ResponseError(f"cannot decode the compressed body: {exc}") from exc
        return rest


class _Deflate:
    """``Content-Encoding: deflate`` is zlib-wrapped by the RFC, raw by many servers."""

    def __init__(self) -> None:
        self._inner: Any = zlib.decompressobj()
        self._started = False

    @property
    def unconsumed_tail(self) -> bytes:
        tail: bytes = self._inner.unconsumed_tail
        return tail

    def decompress(self, data: bytes, limit: int) -> bytes:
        if not self._started:
            self._started = True
            try:
                return bytes(self._inner.decompress(data, limit))
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data, limit))

    def flush(self) -> bytes:
        return bytes(self._inner.flush())


class Headers:
    """Response headers, decoded only as far as they are read.

    The few fields afetch reads of every response are picked out while
    parsing; the full case-insensitive multidict is built only when all
    fields are asked for (``--headers``, header expectations).
    """

    __slots__ = ("_all", "_fields", "_known")

    _KNOWN = frozenset(
        {
            b"content-type",
            b"content-length",
            b"content-encoding",
            b"transfer-encoding",
            b"location",
            b"retry-after",
        }
    )
    _KNOWN_TEXT = frozenset(name.decode() for name in _KNOWN)

    def __init__(self, fields: list[tuple[bytes, bytes]]) -> None:
        self._fields = fields
        self._all: CIMultiDictProxy[str] | None = None
        known: dict[str, str] = {}
        for name, value in fields:
            key = name.lower()
            if key in self._KNOWN and (text := key.decode()) not in known:
                known[text] = _text(value)
        self._known = known

    def get(self, name: str) -> str | None:
        key = name.lower()
        if key in self._KNOWN_TEXT:
            return self._known.get(key)
        return self.all().get(name)

    def items(self) -> Iterable[tuple[str, str]]:
        return self.all().items()

    def all(self) -> CIMultiDictProxy[str]:
        if self._all is None:
            self._all = CIMultiDictProxy(
                CIMultiDict((_text(name), _text(value)) for name, value in self._fields)
            )
        return self._all


_NO_HEADERS = Headers([])


def _with_defaults(
    headers: CIMultiDict[str] | CIMultiDictProxy[str], user_agent: str
) -> Iterable[tuple[str, str]]:
    """aiohttp's defaults (Accept, Accept-Encoding, User-Agent) unless the request sets them."""
    defaults = [
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
        ("User-Agent", user_agent),
    ]
    return [*((k, v) for k, v in defaults if k not in headers), *headers.items()]


def _basic(url: URL) -> str:
    from urllib.parse import unquote

    user = unquote(url.raw_user or "")
    password = unquote(url.raw_password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _ip_literal(host: str) -> socket.AddressFamily | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _text(raw: bytes) -> str:
    """Header bytes as text: UTF-8 when they are, else Latin-1 (RFC 9110's obs-text)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _how(exc: Exception | None) -> str:
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "closed" if exc is None else f"lost ({exc})"


def _parser_message(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
