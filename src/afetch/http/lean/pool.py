"""Keep-alive connections per origin: the lean transport's entry point.

A request takes an idle connection to its origin or opens one (connect.py),
writes its head, and waits for the response head (protocol.py); the caller
streams the body and releases the response, which hands the connection
back here when it ended cleanly at a message boundary.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, cast

from afetch.errors import RequestError, ResponseError
from afetch.http.base import default_headers
from afetch.http.dns import Resolver
from afetch.http.lean.connect import Connector
from afetch.http.lean.protocol import Connection, Key, NotAnswered, Response
from afetch.http.options import DEFAULT_PORTS
from afetch.http.request import HeadRenderer
from afetch.http.tls import TlsSessions

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

    from yarl import URL

    from afetch.http.base import Request
    from afetch.http.lean.h2link import H2Link, H2Response
    from afetch.http.options import TransportOptions
    from afetch.http.timing import HopTiming

#: --http2: "alpn" offers h2 on https; "prior" also speaks it at once on http (h2c).
Http2 = Literal["off", "alpn", "prior"]

#: Idle connections older than this are not reused (nginx closes at 75 s, many at 5 to 60 s).
KEEPALIVE_SECONDS = 15.0
#: At the end of a run, how long TLS connections may take to say goodbye.
_GOODBYE_SECONDS = 0.25
#: Connections open (or opening) to one origin until it has shown it keeps them
#: alive: more requests for it wait for one of them to come free. A server
#: with a small accept backlog that closes after each answer (Python's
#: http.server queues 5) then never sees 50 connections at once, whose
#: overflow waits out 1 s retransmissions: 500 URLs at -c 50 took 7.7 s, 0.3 s
#: with this. Once that many answers came on kept-alive connections the
#: origin is healthy and the limit is lifted: -c 150 to one host still has 150
#: requests in flight after its first answers.
RAMP_FIRST = 6
#: Times one request moves to a new HTTP/2 connection (GOAWAY, REFUSED_STREAM) at most.
MAX_REPLAYS = 3
#: HTTP/2 connections to one origin at most (more only when the server's stream limit
#: is below ours).
MAX_LINKS_PER_ORIGIN = RAMP_FIRST
#: Origins remembered as answering HTTP/1.1 to an offer of h2.
MAX_H1_ORIGINS = 4096


class _Origin:
    """One origin's open connections and the requests waiting for room, until lifted."""

    __slots__ = ("kept", "lifted", "open", "waiters")

    def __init__(self) -> None:
        self.open = 0  # open or opening, counted from the connect
        self.kept = 0  # answers after which the connection was kept alive
        self.lifted = False
        self.waiters: deque[asyncio.Future[None]] = deque()

    def has_room(self) -> bool:
        return self.lifted or self.open < RAMP_FIRST


class Pool:
    """The lean Transport: keep-alive connections per (scheme, host, port)."""

    def __init__(
        self,
        *,
        defaults: list[tuple[str, str]],
        tls: ssl.SSLContext | TlsSessions | None = None,
        connect_timeout: float | None = None,
        max_idle: int = 100,
        resolver: Resolver | None = None,
        http2: Http2 = "off",
        streams: int = 100,
    ) -> None:
        self._renderer = HeadRenderer(defaults)
        self._resolver = resolver or Resolver()
        self._tls = tls if isinstance(tls, TlsSessions) else TlsSessions(tls)
        self._connector = Connector(
            resolver=self._resolver, tls=self._tls, connect_timeout=connect_timeout
        )
        self._max_idle = max(1, max_idle)
        self._idle: dict[Key, list[Connection]] = {}
        self._idle_order: dict[Connection, None] = {}  # oldest first, for eviction
        self._open: set[Connection] = set()
        self._origins: dict[Key, _Origin] = {}  # only origins with connections or waiters
        self._all_lost = asyncio.Event()  # set once closed and every connection is gone
        self._closed = False
        self._http2 = http2
        self._streams = streams  # HTTP/2 streams per connection at most (ours)
        # HTTP/2 connections per origin (a second only when the first is full), LRU first.
        self._links: dict[Key, list[H2Link]] = {}
        # An h2 offer under way; its result: what made it fail, shared by those waiting.
        self._opening: dict[Key, asyncio.Future[Exception | None]] = {}
        # Origins that answered an offer of h2 with HTTP/1.1 (False), or asked for it on
        # an HTTP/2 stream (True: their records say "downgraded").
        self._h1_origins: OrderedDict[Key, bool] = OrderedDict()

    @classmethod
    def from_options(
        cls, options: TransportOptions, resolver: Resolver, tls: TlsSessions | None = None
    ) -> Pool:
        return cls(
            defaults=default_headers(options),
            tls=tls or options.tls,
            connect_timeout=options.connect_timeout,
            max_idle=options.idle_connections,
            resolver=resolver,
            http2=options.http2,
            streams=options.streams_per_origin,
        )

    def send(self, request: Request, hop: HopTiming) -> _Exchange:
        """``async with pool.send(...) as response``: the connection goes back on exit."""
        return _Exchange(self, request, hop)

    async def prepare(self) -> None:
        """The trust store loads when the first https URL needs it (an http-only run never
        pays its 20-30 ms); ``h2`` is imported now with --http2 (tens of ms), not inside
        the first request's timeout."""
        if self._http2 != "off":
            import afetch.http.lean.h2link  # noqa: F401

    async def close(self) -> None:
        self._closed = True
        await self._resolver.close()
        # Every open connection, idle or not: one still held by a request that a
        # stop cancelled at an awkward moment must not outlive the run.
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        self._idle_order.clear()
        if not self._open:
            return
        # Plain TCP closes on the next loop pass; TLS first sends its close_notify
        # and waits for the server's. Give that a moment, then hang up on the rest:
        # a transport still open when the loop closes is an "unclosed transport".
        try:
            await asyncio.wait_for(self._all_lost.wait(), _GOODBYE_SECONDS)
        except TimeoutError:
            for connection in list(self._open):
                connection.abort()
            await asyncio.sleep(0)

    # -- Owner: what connections tell the pool --------------------------------

    def opened(self, connection: Connection) -> None:
        self._open.add(connection)

    def lost(self, connection: Connection) -> None:
        """A connection is gone; the last one after close() ends the wait there."""
        self._open.discard(connection)
        links = self._links.get(connection.key) if self._links else None
        if links is not None and cast("object", connection) in links:
            links.remove(cast("H2Link", connection))
            if not links:
                del self._links[connection.key]
        if connection.counted:
            connection.counted = False
            self._free(connection.key)
        if self._closed and not self._open:
            self._all_lost.set()

    def released(self, connection: Connection, reusable: bool) -> None:
        """A response is done: keep its connection idle, least recently used out first."""
        if connection.key[0] == "https":
            self._tls.remember(connection.key[1], connection.ssl_object())
        if not reusable or self._closed:
            connection.close()
            return
        origin = self._origins.get(connection.key)
        if origin is not None and not origin.lifted:
            origin.kept += 1
            if origin.kept >= RAMP_FIRST:  # it keeps connections alive: no more ramp
                origin.lifted = True
                while origin.waiters:
                    self._wake(origin)
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.key, []).append(connection)
        self._idle_order[connection] = None
        if len(self._idle_order) > self._max_idle:
            oldest = next(iter(self._idle_order))
            self._forget_idle(oldest)
            # Closed at once, without TLS's close_notify (a FIN, as browsers let idle
            # connections go): close() would send one and hold the descriptor until the
            # server answers it, up to 30 s for one that never does.
            oldest.abort()
        if origin is not None and origin.waiters:
            self._wake(origin)  # a request waiting for room can take this one

    def _forget_idle(self, connection: Connection) -> None:
        del self._idle_order[connection]
        idle = self._idle[connection.key]
        idle.remove(connection)
        if not idle:  # per-origin lists go with their last connection: memory stays bounded
            del self._idle[connection.key]

    # -- one exchange -------------------------------------------------------------

    async def exchange(self, request: Request, hop: HopTiming) -> Response:
        """Write the request on a connection and wait for the response head."""
        url = request.url
        scheme, host = url.scheme, url.raw_host or ""
        port = url.port
        if not port:  # yarl gives the scheme's default when none is written; 0 is written
            if port == 0:
                raise RequestError("port 0 is not 1-65535")
            port = DEFAULT_PORTS[scheme]
        key = (scheme, host, port)
        connection: Connection | None = None
        h2 = self._http2 != "off" and (scheme == "https" or self._http2 == "prior")
        if h2 and key not in self._h1_origins:
            answer = await self._exchange_h2(request, key, port, hop)
            if not isinstance(answer, Connection | None):
                return answer
            connection = answer  # the server picked HTTP/1.1 on this new connection
        if h2 and self._h1_origins.get(key):
            hop.downgraded = True
        head, body = self._renderer.render(request, host, port)
        while True:
            reused = False
            if connection is None:
                connection = self._take_idle(key)
                reused = connection is not None
            if connection is None:
                opened, reused = await self._open_or_wait(key, hop, request.proxy)
                connection = cast("Connection", opened)  # no h2 offered: HTTP/1.1
            hop.remote_ip, hop.reused = connection.remote_ip, reused
            if scheme == "https":
                hop.ssl_object = connection.ssl_object()
            response = Response(connection, request.method, url)
            connection.send(head, body)
            try:
                await response.wait_for_headers()
            except NotAnswered:
                connection.close()
                if reused:  # the server had closed it while idle: once more on a new one
                    connection = None
                    continue
                raise
            except BaseException:
                hop.unsent = connection.unsent()
                if hop.unsent:
                    connection.abort()  # close() would hold the socket until the peer reads
                else:
                    connection.close()
                raise
            return response

    async def _exchange_h2(
        self, request: Request, key: Key, port: int, hop: HopTiming
    ) -> H2Response | Connection | None:
        """The request as a stream on the origin's HTTP/2 connection (opened, or waited
        for while another request opens it). A Connection: the server chose HTTP/1.1 on
        the one just opened; None: the origin speaks HTTP/1.1."""
        from afetch.http.lean.h2link import Downgrade, Replay

        fields, body = self._renderer.render_h2(request, key[1], port)
        replays = 0
        while True:
            link = self._usable_link(key)
            if link is None or (link.full and self._may_add_link(key)):
                if (opening := self._opening.get(key)) is not None:
                    hop.queued = True
                    failure = await asyncio.shield(opening)
                    hop.queued = False
                    if failure is not None:  # the connection they all waited for: not to be
                        raise failure
                    if key in self._h1_origins:
                        return None
                    continue
                opened = await self._open_h2(key, hop, request.proxy)
                if isinstance(opened, Connection):
                    return opened
                link, hop.reused = opened, False
            elif link.full:  # wait for a stream (or news: SETTINGS, GOAWAY), then choose again
                await _outside_the_timeout(link.changed(), hop)
                continue
            else:
                self._links[key] = self._links.pop(key)  # most recently used last
                hop.reused = True
            hop.remote_ip = link.remote_ip
            if key[0] == "https":
                hop.ssl_object = link.ssl_object()
            try:
                return await link.request(fields, body, request.method, request.url, hop)
            except Downgrade:
                self._speaks_h1(key, downgraded=True)
                return None
            except Replay:
                replays += 1
                if replays > MAX_REPLAYS:
                    raise ResponseError(
                        f"the server did not process the request on {replays} HTTP/2 streams"
                    ) from None

    async def _open_h2(self, key: Key, hop: HopTiming, proxy: URL | None) -> H2Link | Connection:
        """A new connection offering HTTP/2; the origin's other requests wait for it."""
        from afetch.http.lean.h2link import H2Link

        opening: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self._opening[key] = opening
        failure: Exception | None = None
        try:
            connection, _ = await self._open_or_wait(key, hop, proxy, h2=True)
        except Exception as exc:  # the requests waiting for it fail with it (not a cancel)
            failure = exc
            raise
        finally:
            del self._opening[key]
            opening.set_result(failure)
        if isinstance(connection, H2Link):
            self._links.setdefault(key, []).append(connection)
            self._evict_links()
        else:
            self._speaks_h1(key)
        return connection

    def _speaks_h1(self, key: Key, downgraded: bool = False) -> None:
        self._h1_origins[key] = downgraded or self._h1_origins.get(key, False)
        while len(self._h1_origins) > MAX_H1_ORIGINS:
            self._h1_origins.popitem(last=False)

    def _usable_link(self, key: Key) -> H2Link | None:
        """The origin's connection with a free stream, else its least busy one (None: no
        connection takes streams). Connections that stopped, or idled out, are dropped."""
        links = self._links.get(key)
        if not links:
            return None
        now = time.monotonic()
        for link in list(links):
            stale = not link.busy and now - link.idle_since >= KEEPALIVE_SECONDS
            if not link.accepting or stale:
                links.remove(link)
                if stale:
                    link.close()
        if not links:
            del self._links[key]
            return None
        return next((link for link in links if not link.full), None) or min(
            links, key=lambda link: link.streams
        )

    def _may_add_link(self, key: Key) -> bool:
        """Another connection to the origin when every one is full: the server's stream
        limit, not ours, is what filled them (ours is --per-host, else -c, in all)."""
        links = self._links.get(key, [])
        if len(links) >= MAX_LINKS_PER_ORIGIN or not all(link.settled for link in links):
            return False
        return sum(link.limit for link in links) < self._streams

    def _evict_links(self) -> None:
        """Idle HTTP/2 connections beyond the idle bound close, least recently used first."""
        excess = sum(map(len, self._links.values())) - self._max_idle
        for key, links in list(self._links.items()):
            for link in list(links):
                if excess <= 0:
                    return
                if not link.busy:
                    links.remove(link)
                    link.close()
                    excess -= 1
            if not links:
                del self._links[key]

    async def _open_or_wait(
        self, key: Key, hop: HopTiming, proxy: URL | None = None, h2: bool = False
    ) -> tuple[Connection | H2Link, bool]:
        """A new connection when the origin has room (``RAMP_FIRST``); else the first one
        released meanwhile. (connection, reused)"""
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin()
        while not origin.has_room():
            hop.queued = True  # stays so if the wait is cut short: the timeout's phase
            await self._wait_for_room(origin)
            hop.queued = False
            if (idle := self._take_idle(key)) is not None:
                return idle, True
        origin.open += 1
        try:
            connection = await self._connector.connect(
                key,
                hop,
                self,
                proxy,
                self._link_factory(key) if h2 else None,
                self._http2 == "prior",
            )
        except BaseException:
            self._free(key)
            raise
        if connection.closed:  # lost before it could be counted: its room is free again
            self._free(key)
        else:
            connection.counted = True
        return connection, False

    def _link_factory(self, key: Key) -> Callable[[], H2Link]:
        from afetch.http.lean.h2link import H2Link

        return lambda: H2Link(self, key, self._streams)

    async def _wait_for_room(self, origin: _Origin) -> None:
        waiter = asyncio.get_running_loop().create_future()
        origin.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake(origin)  # woken, then cancelled: the wake goes to the next one
            elif waiter in origin.waiters:  # a wake may have dropped it, cancelled, already
                origin.waiters.remove(waiter)
            raise

    def _free(self, key: Key) -> None:
        """One connection of ``key`` gone: room for a waiting request."""
        origin = self._origins.get(key)
        if origin is None:
            return
        origin.open -= 1
        if origin.waiters:
            self._wake(origin)
        elif origin.open <= 0:
            del self._origins[key]  # bounded: only origins with connections or waiters

    @staticmethod
    def _wake(origin: _Origin) -> None:
        while origin.waiters:
            waiter = origin.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _take_idle(self, key: Key) -> Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle[-1]  # the most recently used: the likeliest still open
            self._forget_idle(connection)
            if not connection.closed and now - connection.idle_since < KEEPALIVE_SECONDS:
                return connection
            connection.close()
            idle = self._idle.get(key)
        return None


async def _outside_the_timeout(wait: Awaitable[None], hop: HopTiming) -> None:
    """Wait for an HTTP/2 stream without spending the attempt's timeout: the streams
    in use each have their own, so the wait ends (queue time, said in the record)."""
    hop.queued = True
    limit = hop.limit
    started = time.monotonic()
    try:
        await wait
    finally:
        hop.queued = False
        when = limit.when() if limit is not None else None
        if limit is not None and when is not None and not limit.expired():
            limit.reschedule(when + time.monotonic() - started)


class _Exchange:
    """The async context manager ``Pool.send`` returns."""

    __slots__ = ("_hop", "_pool", "_request", "_response")

    def __init__(self, pool: Pool, request: Request, hop: HopTiming) -> None:
        self._pool = pool
        self._request = request
        self._hop = hop
        self._response: Response | None = None

    async def __aenter__(self) -> Response:
        self._response = await self._pool.exchange(self._request, self._hop)
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._response.release()
