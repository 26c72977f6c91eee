"""One connection's bytes: a request written, its response parsed by llhttp and streamed.

``Connection`` is the asyncio protocol of one TCP (or TLS) connection; it
hands what it receives to the ``Response`` in progress. A response reads
its body with flow control (the socket pauses above a high-water mark) and
decodes it in bounded pieces.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

import httptools

from afetch.errors import ResponseError, TooLargeError
from afetch.http import decoding
from afetch.http.lean.headers import NO_HEADERS, Headers, charset_of, unfold
from afetch.http.options import MAX_HEADER_COUNT, MAX_HEADER_LINE
from afetch.http.request import location_text, text_of

if TYPE_CHECKING:
    from yarl import URL

    from afetch.http.lean.h2link import H2Link

#: Body bytes buffered per response before reading from its socket pauses.
_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
#: Bytes of response head accepted in all (status line and every field at their limits).
MAX_HEAD = MAX_HEADER_LINE * (MAX_HEADER_COUNT + 1)

Key = tuple[str, str, int]  # (scheme, host, port)


class NotAnswered(ResponseError):
    """The server closed the connection before any byte of a response."""


class _HeadDone(Exception):
    """Stops the parser after a HEAD response's headers: such a response has no body."""


class _Extra(Exception):
    """Stops the parser at the start of a second message: the first one is the answer."""


class Owner(Protocol):
    """Who keeps a connection: told when it opens, when it is lost, when it is free."""

    def opened(self, connection: Connection) -> None: ...
    def lost(self, connection: Connection) -> None: ...
    def released(self, connection: Connection, reusable: bool) -> None: ...


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; hands what it receives to the current response."""

    def __init__(self, owner: Owner, key: Key) -> None:
        self.owner = owner
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self.remote_ip: str | None = None
        self.counted = False  # in its origin's count of open connections (pool.py)
        #: --http2: makes the HTTP/2 protocol that takes the connection over if ALPN picks h2.
        self.upgrade: Callable[[], H2Link] | None = None
        self.upgraded: H2Link | None = None
        # What a new connection receives before its first request is written is
        # kept for it: a server may answer (503, 408) and close as soon as it
        # accepts, and that answer is the response, as curl records it.
        self._early: list[bytes] | None = []
        self._early_loss: tuple[Exception | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        if self.upgrade is not None and _alpn(transport) == "h2":
            self.closed = True  # this object is done: the HTTP/2 link owns the connection
            self.upgraded = successor = self.upgrade()
            successor.negotiated = True
            transport.set_protocol(successor)
            successor.connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        self.remote_ip = peer[0] if peer else None
        self.owner.opened(self)  # until connection_lost: the owner's close() ends them all

    def attach(self, response: Response) -> None:
        """``response`` is the answer to what is written next; early bytes go to it."""
        self.response = response
        early, self._early = self._early, None
        if early:
            if sum(map(len, early)) > _HIGH_WATER:
                self.resume_reading()  # paused while nobody read; the response paces it now
            for data in early:
                response.feed(data)
        if self._early_loss is not None:
            response.lost(self._early_loss[0])

    def send(self, head: bytes, body: bytes | None) -> None:
        assert self.transport is not None
        if self.closed:  # it answered and closed before the request: nothing to write to
            return
        if body and len(body) > 16 * 1024:
            self.transport.write(head)
            self.transport.write(body)
        else:
            self.transport.write(head + body if body else head)

    def unsent(self) -> int:
        """Request bytes written but not yet taken by the kernel (the peer is not reading)."""
        if self.transport is None or self.closed:
            return 0
        return self.transport.get_write_buffer_size()

    def data_received(self, data: bytes) -> None:
        if self.response is not None:
            self.response.feed(data)
        elif self._early is not None:  # before the first request: kept for its response
            self._early.append(data)
            if sum(map(len, self._early)) > _HIGH_WATER:
                self.pause_reading()
        else:  # bytes while idle: nothing sane to do with them but to hang up
            self.close()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost tells the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.owner.lost(self)
        if self.response is not None:
            self.response.lost(exc)
        elif self._early is not None:
            self._early_loss = (exc,)

    def ssl_object(self) -> object | None:
        return None if self.transport is None else self.transport.get_extra_info("ssl_object")

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def release(self, reusable: bool) -> None:
        """The response is done with this connection: the owner keeps or closes it."""
        self.response = None
        self.owner.released(self, reusable and not self.closed)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Response:
    """Status and headers once parsed; the body streamed by ``content.readany()``."""

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
        "http_version",
        "reason",
        "status",
        "url",
    )

    def __init__(self, connection: Connection, method: str, url: URL) -> None:
        self.url = url
        self.status = 0
        self.reason: str | None = None
        self.http_version = "1.1"
        self.headers = NO_HEADERS
        self._connection: Connection | None = connection
        # The parser holds this response's callbacks: a cycle, broken by release()
        # so a finished response is freed at once, not by the cycle collector.
        parser = httptools.HttpResponseParser(self)
        # As curl and aiohttp read them: lines ended by a bare LF, blanks after a chunk size.
        parser.set_dangerous_leniencies(
            lenient_optional_cr_before_lf=True, lenient_spaces_after_chunk_size=True
        )
        self._parser: httptools.HttpResponseParser | None = parser
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
        self._decoder: decoding.Decoder | None = None
        self._received = 0
        self._waiter: asyncio.Future[None] | None = None
        connection.attach(self)

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
        return charset_of(self.headers.get("Content-Type"))

    @property
    def location(self) -> str | None:
        if self.headers.get("Location") is None:  # the common case: picked out while parsing
            return None
        raw = self.headers.raw("location")
        return None if raw is None else location_text(raw)

    async def readany(self) -> bytes:
        """The next piece of the (decoded) body; b"" at its end."""
        while True:
            if self._decoder is not None and (decoded := self._decoder.pull()):
                return decoded  # what the last piece inflated to, INFLATE_PIECE at a time
            if self._chunks:
                piece = self._chunks.popleft()
                self._buffered -= len(piece)
                if self._paused and self._buffered <= _LOW_WATER and self._connection:
                    self._paused = False
                    self._connection.resume_reading()
                if self._decoder is None:
                    return piece
                self._decoder.push(piece)
                if decoded := self._decoder.pull():
                    return decoded
                continue
            if self._error is not None:
                raise self._error
            if self._complete:
                if self._decoder is not None:
                    decoder, self._decoder = self._decoder, None
                    if self._received:  # no body at all (HEAD, 204, 304, length 0) has no stream
                        decoder.end()
                return b""
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
        if connection is not None:
            connection.release(self._complete and self._keep_alive and not self._chunks)

    # -- fed by the connection ------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._answered = True
        if self._complete:  # bytes after the answer: this connection is out of step
            self._extra()
            return
        if not self._headers_done:
            self._head_bytes += len(data)
            if b"\r\n " in data or b"\r\n\t" in data:
                data = unfold(data)
        if self._parser is None:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _HeadDone):
                # Reusable only if nothing (a stray body) came after the headers.
                if data.find(b"\r\n\r\n") != len(data) - 4:
                    self._extra()
                return
            if self._complete:  # _Extra, or a callback of whatever followed the answer
                self._extra()
                return
            self._fail(cause if isinstance(cause, ResponseError) else ResponseError(str(exc)))
            return
        except httptools.HttpParserUpgrade:
            self._keep_alive = False
            self._finish()
            return
        except httptools.HttpParserError as exc:
            if self._complete:  # junk after a complete response
                self._extra()
                return
            self._fail(ResponseError(f"malformed response: {str(exc) or type(exc).__name__}"))
            return
        if not self._headers_done and self._head_bytes > MAX_HEAD:
            self._fail(TooLargeError("response head too large"))

    def lost(self, exc: Exception | None) -> None:
        if self._complete or self._error is not None:
            self._wake()
            return
        if self._headers_done and self._until_close and exc is None:
            self._finish()  # a body delimited by the end of the connection
            return
        if not self._answered:
            self._fail(NotAnswered("server closed the connection without sending a response"))
        elif not self._headers_done:
            self._fail(ResponseError(f"connection {_how(exc)} in the response head"))
        else:
            expected = self.content_length
            told = f" of {expected}" if expected is not None else ""
            self._fail(
                ResponseError(f"connection {_how(exc)} after {self._received}{told} body bytes")
            )

    def _extra(self) -> None:
        """More than one answer arrived: keep the first, never reuse the connection."""
        self._keep_alive = False
        if self._connection is not None:
            self._connection.close()

    # -- llhttp callbacks ---------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        if self._complete:  # a second response began: the first one is the answer
            raise _Extra
        self._reason += reason
        if len(self._reason) > MAX_HEADER_LINE:
            raise TooLargeError("status line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > MAX_HEADER_LINE:
            raise TooLargeError(f"header field too large ({len(value)} bytes)")
        if len(self._fields) >= MAX_HEADER_COUNT:
            raise TooLargeError(f"too many headers (over {MAX_HEADER_COUNT})")
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        if self._complete:  # a second response (one without a reason phrase)
            raise _Extra
        assert self._parser is not None  # callbacks run inside feed()
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue, 103 Early Hints: the answer follows
            return
        if not 100 <= status <= 599 and status != 999:  # 999: LinkedIn's bot wall
            raise ResponseError(f"status {status:03d} is not an HTTP status (100-599)")
        self.status = status
        self.reason = text_of(self._reason) or None
        self.http_version = self._parser.get_http_version()
        self.headers = headers = Headers(self._fields)
        self._fields = []  # the Headers own that list: a stray second head must not add to it
        self._headers_done = True
        self._keep_alive = self._parser.should_keep_alive()
        if not (self._head_only or status in (204, 304)):  # these have no body to decode
            self._decoder = decoding.decoder_for(headers.get("Content-Encoding"))
        self._wake()
        if self._head_only:  # llhttp cannot be told; 204 and 304 it knows itself
            self._finish()
            raise _HeadDone
        # No length and no chunked coding last (RFC 9112 6.3): the body ends with the connection.
        coding = headers.get("Transfer-Encoding")
        self._until_close = headers.get("Content-Length") is None and (
            coding is None or coding.rsplit(",", 1)[-1].strip().lower() != "chunked"
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


def _alpn(transport: asyncio.BaseTransport) -> str | None:
    ssl_object = transport.get_extra_info("ssl_object")
    return None if ssl_object is None else ssl_object.selected_alpn_protocol()


def _how(exc: Exception | None) -> str:
    if isinstance(exc, ConnectionResetError):
        return "reset"
    return "closed" if exc is None else f"lost ({exc})"
