"""The seam: a Transport sends one Request and hands back a streamed Response.

``fetch.py`` and the run layer use only what is here and ``open.py``. Two
transports meet the protocol: the lean HTTP/1.1 client (``lean/``, the
default for direct requests) and an aiohttp session (``aiohttp_transport.py``:
proxied requests, and every request with ``--http-client aiohttp``).
Transports raise only afetch's exception tree (``afetch.errors``) and
``TimeoutError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from afetch._version import __version__
from afetch.http.decoding import ACCEPT_ENCODING

if TYPE_CHECKING:
    from afetch.http.options import TransportOptions
    from afetch.http.timing import HopTiming

HeaderMap = CIMultiDict[str] | CIMultiDictProxy[str]


@dataclass(slots=True)
class Request:
    """One request as sent on one hop (fetch.py follows redirects itself)."""

    method: str
    url: URL
    headers: HeaderMap
    body: bytes | None = None
    #: A SOCKS proxy (``socks5://``, ``socks5h://``, ``socks4://``) the lean client goes through.
    proxy: URL | None = None


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


def default_headers(options: TransportOptions) -> list[tuple[str, str]]:
    """The headers every request gets unless it sets them: minus ``-H 'Name:'`` removals,
    and without User-Agent for ``-A ''``, as with curl."""
    agent = f"afetch/{__version__}" if options.user_agent is None else options.user_agent
    defaults = [("Accept", "*/*"), ("Accept-Encoding", ACCEPT_ENCODING), ("User-Agent", agent)]
    removed = set(options.removed_headers)
    return [(k, v) for k, v in defaults if k.lower() not in removed and (v or k != "User-Agent")]
