"""HTTP/2 on one connection per origin: requests as multiplexed streams (``h2`` frames them).

A link is the asyncio protocol of a connection that ALPN (or
--http2-prior-knowledge) made HTTP/2. Each request is a stream, and its
response is protocol.Response fed by the link instead of llhttp, so a body
is read, decoded and bounded exactly as over HTTP/1.1. Flow control is the
stream's back-pressure: bytes received are acknowledged at once unless the
response is above its high-water mark, then as they are read.

What the server does not process is sent again on a new connection
without counting an attempt (``Replay``): streams above a GOAWAY's last
stream id and REFUSED_STREAM. HTTP_1_1_REQUIRED sends the origin back to
HTTP/1.1 (``Downgrade``). A peer cannot grow memory or hang a run: header
lists are bounded by the HTTP/1.1 head limits, CONTINUATION runs by ``h2``
(64 frames), control frames (PING, SETTINGS, unknown) by a budget that
only frames of responses refill.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from afetch.errors import RequestError, ResponseError, TooLargeError
from afetch.http import decoding
from afetch.http.lean.headers import NO_HEADERS, Headers
from afetch.http.lean.protocol import MAX_HEAD, Key, Owner, Response
from afetch.http.options import MAX_HEADER_COUNT, MAX_HEADER_LINE

if TYPE_CHECKING:
    from yarl import URL

    from afetch.http.timing import HopTiming

#: The windows granted to the server: a large body is not held to 64 KiB per round trip.
STREAM_WINDOW = 4 * 1024 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
#: Control frames a connection may send between two frames of a response.
CONTROL_BUDGET = 1000
#: Request bytes queued on the socket before a body waits for the kernel to take them.
_WRITE_HIGH = 256 * 1024

#: Outbound lists are built valid (request.py checks and lower-cases them): h2's own
#: checks would run on every header of every request. What servers send is checked.
_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


class Replay(ResponseError):
    """The server did not process the stream (above its GOAWAY, or refused it): it may be
    sent again on another connection without counting an attempt."""


class Downgrade(Replay):
    """The server asked for HTTP/1.1 on this origin (HTTP_1_1_REQUIRED)."""


def _name(code: int | None) -> str:
    return code.name if isinstance(code, h2.errors.ErrorCodes) else str(code)


class _Stream:
    """What a Response on a stream takes for its connection (protocol.Response calls these)."""

    __slots__ = ("link", "paused", "stream_id", "unacked")

    def __init__(self, link: H2Link, stream_id: int) -> None:
        self.link = link
        self.stream_id = stream_id
        self.unacked = 0  # bytes received while paused, acknowledged as they are read
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False
        if self.unacked:
            self.link.acknowledge(self.stream_id, self.unacked)
            self.unacked = 0

    def close(self) -> None:
        """The response failed or was left unread: the stream ends, the connection stays."""
        self.link.finish(self.stream_id, clean=False)

    abort = close

    def release(self, reusable: bool) -> None:
        self.link.finish(self.stream_id, clean=reusable)


class H2Response(Response):
    """A response on a stream: Response's body reading, without llhttp."""

    __slots__ = ("stream",)

    def __init__(self, stream: _Stream, method: str, url: URL) -> None:
        self.stream = stream
        self.url = url
        self.status = 0
        self.reason = None
        self.http_version = "2"
        self.headers = NO_HEADERS
        self._connection = stream  # type: ignore[assignment]
        self._parser = None
        self._head_only = method == "HEAD"
        self._fields = []
        self._reason = b""
        self._head_bytes = 0
        self._headers_done = False
        self._interim = False
        self._until_close = False
        self._complete = False
        self._keep_alive = True
        self._error = None
        self._answered = False
        self._chunks = deque()
        self._buffered = 0
        self._paused = False
        self._decoder = None
        self._received = 0
        self._waiter = None

    def head(self, fields: list[tuple[bytes, bytes]]) -> None:
        """The response's HEADERS: status and fields, checked against the head limits."""
        status = b""
        plain = []
        for name, value in fields:
            if name == b":status":
                status = value
            elif not name.startswith(b":"):
                if len(name) + len(value) > MAX_HEADER_LINE:
                    raise TooLargeError(f"header field too large ({len(value)} bytes)")
                plain.append((name, value))
        if len(plain) > MAX_HEADER_COUNT:
            raise TooLargeError(f"too many headers (over {MAX_HEADER_COUNT})")
        if not (status.isdigit() and len(status) == 3 and 200 <= int(status) <= 599):
            raise ResponseError(f"bad :status {status[:10]!r} in an HTTP/2 response")
        self._answered = True
        self.status = int(status)
        self.headers = headers = Headers(plain)
        self._headers_done = True
        if not (self._head_only or self.status in (204, 304)):
            self._decoder = decoding.decoder_for(headers.get("Content-Encoding"))
        self._wake()

    def ended(self) -> None:
        self._finish()

    def failed(self, error: BaseException) -> None:
        if not self._complete and self._error is None:
            self._error = error
            self._wake()


class H2Link(asyncio.Protocol):
    """One HTTP/2 connection: streams for the pool's requests, bounded by both sides' limits."""

    def __init__(self, owner: Owner, key: Key, streams: int) -> None:
        self.owner = owner
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.counted = False  # in its origin's count of open connections (pool.py)
        self.accepting = True  # False once GOAWAY came or it is closing: no new streams
        self.remote_ip: str | None = None
        self.idle_since = time.monotonic()
        self._cap = max(1, streams)  # ours: --per-host, else -c
        self._h2 = h2.connection.H2Connection(config=_CONFIG)
        self._streams: dict[int, H2Response] = {}
        self._room: deque[asyncio.Future[None]] = deque()
        self._writable: asyncio.Future[None] | None = None
        self._write_paused = False
        self._budget = CONTROL_BUDGET
        self._answered = False  # any frame of a response yet: a silent close is not a reply
        self._completed = False  # a response ended whole on this connection
        # Until the server's first SETTINGS arrive its stream limit is unknown: one stream
        # (a server that allows 3 would refuse the rest of 20 sent at once).
        self._settings_seen = False
        self.negotiated = False  # ALPN chose h2 (not prior knowledge): a downgrade can help
        self._goaway_id: int | None = None

    # -- asyncio protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        peer = transport.get_extra_info("peername")
        self.remote_ip = peer[0] if peer else None
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEAD,
            },
        )
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(CONNECTION_WINDOW - 65_535)
        self._h2.decoder.max_header_list_size = MAX_HEAD  # before the server acknowledges it
        self._flush()
        self.owner.opened(self)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._flush()  # h2 queued a GOAWAY saying why
            self._fail_all(ResponseError(f"HTTP/2 protocol error: {exc}"))
            self._hang_up()
            return
        for event in events:
            self._handle(event)
            if self.closed:
                return
        self._flush()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_senders()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.accepting = False
        self.owner.lost(self)  # type: ignore[arg-type]
        if self._streams:
            why = "reset" if isinstance(exc, ConnectionResetError) else "closed"
            if not self._answered:
                error: ResponseError = ResponseError(
                    f"connection {why} before any HTTP/2 frame of a response"
                    " (does the server speak HTTP/2?)"
                )
            else:
                error = ResponseError(f"connection {why} during the response")
            self._fail_all(error)
        self._wake_senders()
        self._wake_room()

    # -- what the pool asks ---------------------------------------------------------

    def has_room(self) -> bool:
        return self.accepting and len(self._streams) < self.limit

    @property
    def busy(self) -> bool:
        return bool(self._streams)

    @property
    def streams(self) -> int:
        return len(self._streams)

    @property
    def settled(self) -> bool:
        """The server's SETTINGS came: its stream limit is known."""
        return self._settings_seen

    @property
    def limit(self) -> int:
        """Streams at once on this connection: ours and the server's limit."""
        if not self._settings_seen:
            return 1
        return min(self._cap, self._h2.remote_settings.max_concurrent_streams)

    @property
    def full(self) -> bool:
        return len(self._streams) >= self.limit

    async def changed(self) -> None:
        """Until a stream frees, the server's SETTINGS come, or the connection stops
        taking streams: the pool then chooses again."""
        if not self.accepting:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._room.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._room:
                self._room.remove(waiter)

    async def request(
        self,
        fields: list[tuple[bytes, bytes]],
        body: bytes | None,
        method: str,
        url: URL,
        hop: HopTiming,
    ) -> H2Response:
        """Send the request on a new stream and wait for its response's HEADERS."""
        stream_id = self._h2.get_next_available_stream_id()
        response = H2Response(_Stream(self, stream_id), method, url)
        self._streams[stream_id] = response
        try:
            try:
                self._h2.send_headers(stream_id, fields, end_stream=not body)
            except h2.exceptions.ProtocolError as exc:
                raise RequestError(f"cannot send this request over HTTP/2: {exc}") from None
            self._flush()
            if body:
                await self._send_body(stream_id, body, hop)
            await response.wait_for_headers()
        except BaseException:
            self.finish(stream_id, clean=False)
            raise
        return response

    def close(self) -> None:
        """No more streams; a polite GOAWAY, then the transport closes."""
        self.accepting = False
        if self.closed or self.transport is None:
            return
        self.closed = True
        try:
            self._h2.close_connection()
            self._flush()
        except h2.exceptions.ProtocolError:
            pass
        self.transport.close()

    def abort(self) -> None:
        self.accepting = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def ssl_object(self) -> object | None:
        return None if self.transport is None else self.transport.get_extra_info("ssl_object")

    # -- what streams ask ---------------------------------------------------------

    def acknowledge(self, stream_id: int, size: int) -> None:
        if not self.closed:
            self._h2.acknowledge_received_data(size, stream_id)
            self._flush()

    def finish(self, stream_id: int, clean: bool) -> None:
        """The response is done with its stream (``clean``: read to its end)."""
        if self._streams.pop(stream_id, None) is None:
            return
        if not clean and not self.closed:
            try:
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                self._flush()
            except h2.exceptions.ProtocolError:
                pass  # already closed by the server
        if not self._streams:
            self.idle_since = time.monotonic()
            if not self.accepting:
                self.close()
        self._wake_room()

    # -- internals ----------------------------------------------------------------

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._refill()
            response = self._streams.get(event.stream_id)
            size = event.flow_controlled_length
            if response is None:  # a stream we reset: the connection's window still counts it
                self._h2.acknowledge_received_data(size, event.stream_id)
                return
            stream = response.stream
            response.on_body(event.data)
            if stream.paused:
                stream.unacked += size
            elif size:
                self._h2.acknowledge_received_data(size, event.stream_id)
        elif isinstance(event, h2.events.ResponseReceived):
            self._refill()
            if (response := self._streams.get(event.stream_id)) is not None:
                try:
                    response.head(event.headers)
                except ResponseError as exc:
                    response.failed(exc)
                    self.finish(event.stream_id, clean=False)
        elif isinstance(event, h2.events.StreamEnded):
            self._refill()
            if (response := self._streams.get(event.stream_id)) is not None:
                if response.status:
                    self._completed = True
                    response.ended()
                else:
                    response.failed(ResponseError("the stream ended without a response"))
        elif isinstance(event, h2.events.StreamReset):
            self._stream_reset(event)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)
        elif isinstance(event, h2.events.WindowUpdated):
            self._wake_senders()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._settings_seen = True
            self._spend()
            self._wake_senders()
            self._wake_room()
        elif isinstance(
            event,
            (
                h2.events.PingReceived,
                h2.events.PingAckReceived,
                h2.events.UnknownFrameReceived,
                h2.events.PriorityUpdated,
                h2.events.SettingsAcknowledged,
            ),
        ):
            self._spend()
        elif isinstance(
            event, h2.events.InformationalResponseReceived | h2.events.TrailersReceived
        ):
            self._refill()

    def _stream_reset(self, event: h2.events.StreamReset) -> None:
        response = self._streams.get(event.stream_id)
        if response is None:
            return
        code = event.error_code
        if code == h2.errors.ErrorCodes.REFUSED_STREAM and not response.status:
            error: ResponseError = Replay("the server refused the stream (REFUSED_STREAM)")
        elif code == h2.errors.ErrorCodes.HTTP_1_1_REQUIRED or self._first_failed(code):
            error = Downgrade(f"the server asked for HTTP/1.1 ({_name(code)})")
        else:
            error = ResponseError(f"the server reset the HTTP/2 stream ({_name(code)})")
        response.failed(error)
        self._streams.pop(event.stream_id, None)
        self._wake_room()

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        """No new streams; those it will not process go elsewhere, the rest finish."""
        self.accepting = False
        last = event.last_stream_id if event.last_stream_id is not None else 0
        self._goaway_id = last
        for stream_id in [sid for sid in self._streams if sid > last]:
            self._streams.pop(stream_id).failed(
                Replay("the server will not process this stream (GOAWAY)")
            )
        code = event.error_code
        if code not in (None, h2.errors.ErrorCodes.NO_ERROR) and self._streams:
            if self._first_failed(code):
                self._fail_all(Downgrade(f"the server refused HTTP/2 ({_name(code)})"))
            else:
                self._fail_all(
                    ResponseError(f"the server ended the HTTP/2 connection ({_name(code)})")
                )
        if not self._streams:
            self.close()
        self._wake_room()

    def _first_failed(self, code: int | None) -> bool:
        """A PROTOCOL_ERROR before any response ended whole: this server's HTTP/2 is not
        usable (an origin that only claims h2), so the origin goes back to HTTP/1.1."""
        return (
            code == h2.errors.ErrorCodes.PROTOCOL_ERROR and self.negotiated and not self._completed
        )

    def _spend(self) -> None:
        self._budget -= 1
        if self._budget < 0:
            self._h2.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            self._flush()
            self._fail_all(ResponseError("HTTP/2 flood: too many control frames"))
            self._hang_up()

    def _refill(self) -> None:
        self._answered = True
        self._budget = CONTROL_BUDGET

    async def _send_body(self, stream_id: int, body: bytes, hop: HopTiming) -> None:
        """The body in frames the server's windows allow; waits while they are shut."""
        view = memoryview(body)
        sent, total = 0, len(body)
        while sent < total:
            hop.unsent = total - sent
            if self.closed or stream_id not in self._streams:
                return  # the response says what happened
            try:
                window = min(
                    self._h2.local_flow_control_window(stream_id),
                    self._h2.max_outbound_frame_size,
                    total - sent,
                )
            except h2.exceptions.ProtocolError:
                return  # the stream closed: its response says why
            if window <= 0 or self._write_paused:
                self._writable = asyncio.get_running_loop().create_future()
                try:
                    await self._writable
                finally:
                    self._writable = None
                continue
            end = sent + window == total
            self._h2.send_data(stream_id, bytes(view[sent : sent + window]), end_stream=end)
            sent += window
            self._flush()
        hop.unsent = 0

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _fail_all(self, error: ResponseError) -> None:
        streams, self._streams = self._streams, {}
        for response in streams.values():
            response.failed(error)
        self._wake_room()

    def _hang_up(self) -> None:
        self.accepting = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _wake_senders(self) -> None:
        waiter = self._writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_room(self) -> None:
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)
