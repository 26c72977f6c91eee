"""TLS for both transports: one client context, loaded off the loop, resuming sessions.

Loading the system trust store takes 20-30 ms of CPU; done on the event
loop at the first https URL it stalled every request in flight (plain-http
ones reported 23-29 ms instead of ~1 ms). It is loaded once, in a thread.
A host that is connected to again resumes its TLS session (an abbreviated
handshake, as curl does): the session a connection negotiated is kept per
host name, bounded, and offered when the next connection to that host is
wrapped. Reading a session costs about 0.2 ms (CPython copies it through
DER, certificates included: a tenth of a fresh connection's CPU), so it is
read once per connection, and only from a host's second connection on: a
list of distinct hosts never comes back to pay for it.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: Host names whose last TLS session is kept for resumption.
MAX_SESSIONS = 1024
#: Host names connected to once, remembered so that a second connection is noticed.
MAX_SEEN = 4 * MAX_SESSIONS


class TlsSessions:
    """The run's client SSLContext and the sessions it can resume."""

    def __init__(
        self,
        context: ssl.SSLContext | None = None,
        alpn: tuple[str, ...] = (),
        rebuild: Callable[[], ssl.SSLContext | None] | None = None,
    ) -> None:
        self._alpn = alpn  # --http2: ("h2", "http/1.1")
        self._rebuild = rebuild  # the run's context made again (None: the system's)
        self._h1: asyncio.Task[ssl.SSLContext] | None = None
        self._sessions: OrderedDict[str, ssl.SSLSession] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._read: weakref.WeakSet[Any] = weakref.WeakSet()  # connections already asked
        self._context: ssl.SSLContext | None = None
        self._loading: asyncio.Task[ssl.SSLContext] | None = None
        if context is not None:
            self._adopt(context)

    async def context(self) -> ssl.SSLContext:
        """The context, the system trust store loaded in a thread the first time."""
        if self._context is not None:
            return self._context
        if self._loading is None:
            self._loading = asyncio.get_running_loop().create_task(
                asyncio.to_thread(ssl.create_default_context)
            )
        context = await asyncio.shield(self._loading)
        if self._context is None:
            self._adopt(context)
        return context

    async def h1_context(self) -> ssl.SSLContext:
        """A context that offers only HTTP/1.1 by ALPN, for origins that asked for it while
        the run offers h2 (ALPN is set per context, not per connection)."""
        if not self._alpn:
            return await self.context()
        if self._h1 is None:
            rebuild = self._rebuild

            def build() -> ssl.SSLContext:
                context = (rebuild() if rebuild is not None else None) or (
                    ssl.create_default_context()
                )
                context.set_alpn_protocols(["http/1.1"])
                return context

            self._h1 = asyncio.get_running_loop().create_task(asyncio.to_thread(build))
        return await asyncio.shield(self._h1)

    def remember(self, host: str, ssl_object: Any) -> None:
        """Keep the session a finished exchange negotiated, for the next connection."""
        if ssl_object in self._read:
            return
        self._read.add(ssl_object)
        if host not in self._sessions and host not in self._seen:
            self._seen[host] = None  # first connection: the host may never come back
            while len(self._seen) > MAX_SEEN:
                self._seen.popitem(last=False)
            return
        session = getattr(ssl_object, "session", None)
        if session is None or getattr(ssl_object, "session_reused", False):
            return  # a resumed session is the one already kept
        self._sessions[host] = session
        self._sessions.move_to_end(host)
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)

    def _adopt(self, context: ssl.SSLContext) -> None:
        sessions = self._sessions

        class _Resuming(ssl.SSLObject):
            """asyncio and uvloop wrap without a session: offer the host's last one."""

            @classmethod
            def _create(
                cls,
                incoming: ssl.MemoryBIO,
                outgoing: ssl.MemoryBIO,
                server_side: bool = False,
                server_hostname: str | None = None,
                session: ssl.SSLSession | None = None,
                context: ssl.SSLContext | None = None,
            ) -> ssl.SSLObject:
                if session is None and server_hostname is not None and not server_side:
                    session = sessions.get(server_hostname)
                created: ssl.SSLObject = super()._create(  # type: ignore[misc]
                    incoming, outgoing, server_side, server_hostname, session, context
                )
                return created

        context.sslobject_class = _Resuming
        if self._alpn:
            context.set_alpn_protocols(list(self._alpn))
        self._context = context
