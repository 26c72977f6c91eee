"""A request head: validated and rendered in one place for both transports.

Both transports send the same default headers (aiohttp's set: Accept,
Accept-Encoding, User-Agent) unless the request has its own, and refuse the
same things before anything is connected.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from afetch.config import DEFAULT_PORTS
from afetch.errors import RequestError

if TYPE_CHECKING:
    from yarl import URL

    from afetch.http.transport import HeaderMap, Request

#: What the lean transport can decode; aiohttp is told the same so both agree.
ACCEPT_ENCODING = "gzip, deflate"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


def with_defaults(headers: HeaderMap, user_agent: str) -> list[tuple[str, str]]:
    """Default headers the request does not set, then the request's own."""
    defaults = [
        ("Accept", "*/*"),
        ("Accept-Encoding", ACCEPT_ENCODING),
        ("User-Agent", user_agent),
    ]
    return [*((k, v) for k, v in defaults if k not in headers), *headers.items()]


def check_headers(headers: Iterable[tuple[str, str]]) -> None:
    """Refuse a header that would split the request head (CR, LF, NUL)."""
    for name, value in headers:
        if any(c in name or c in value for c in _FORBIDDEN_IN_HEADERS):
            raise RequestError(f"header {name!r} contains a line break or NUL")


class HeadRenderer:
    """Renders request heads; the run's shared header set is rendered once."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._blocks: dict[int, tuple[object, str]] = {}

    def render(self, request: Request, host: str, port: int) -> bytes:
        url, headers, body = request.url, request.headers, request.body
        if ":" in host:
            host = f"[{host}]"
        authority = host if port == DEFAULT_PORTS[url.scheme] else f"{host}:{port}"
        lines = f"{request.method} {url.raw_path_qs or '/'} HTTP/1.1\r\nHost: {authority}\r\n"
        lines += self._header_block(headers)
        if url.raw_user is not None and "Authorization" not in headers:
            lines += f"Authorization: {basic_auth(url)}\r\n"
        if body is not None:
            if "Content-Type" not in headers:
                lines += "Content-Type: application/octet-stream\r\n"
            lines += f"Content-Length: {len(body)}\r\n"
        elif request.method in _BODY_METHODS:
            lines += "Content-Length: 0\r\n"
        return (lines + "\r\n").encode()

    def _header_block(self, headers: HeaderMap) -> str:
        shared = isinstance(headers, CIMultiDictProxy)
        if shared and (cached := self._blocks.get(id(headers))) is not None:
            return cached[1]
        fields = [
            (name, value)
            for name, value in with_defaults(headers, self.user_agent)
            if name.lower() != "content-length"  # framing is afetch's, from the body it sends
        ]
        check_headers(fields)
        block = "".join(f"{name}: {value}\r\n" for name, value in fields)
        if shared:
            self._blocks[id(headers)] = (headers, block)  # holding it keeps the id unique
        return block


def basic_auth(url: URL) -> str:
    """``user:pass@`` in a URL → a Basic Authorization value."""
    user = unquote(url.raw_user or "")
    password = unquote(url.raw_password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
