"""A request head: validated and rendered in one place for both transports.

Both transports send the same default headers (aiohttp's set: Accept,
Accept-Encoding, User-Agent) unless the request has its own, and refuse the
same things before anything is connected. The ``check_*`` functions are the
one validator: input lines (``invalid_input``) and options (usage errors)
are checked with them when they are read, and the transports check again
as a last guard, so nothing invalid is ever written to a socket.

Framing is afetch's: ``Host`` is sent once (the user's value wins, as with
curl), a user ``Content-Length`` is replaced by the real length, and a user
``Transfer-Encoding: chunked`` makes afetch chunk-encode the body, as curl
does; any other ``Transfer-Encoding`` is refused.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from afetch.errors import RequestError
from afetch.http.options import DEFAULT_PORTS

if TYPE_CHECKING:
    from yarl import URL

    from afetch.http.base import HeaderMap, Request

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: RFC 9110 token: methods and header names.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Controls a field value must not hold (RFC 9110 §5.5: HTAB is the one allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: A host name as sent on the wire (IDNA already applied): letters, digits, -, _ and dots.
_HOST_NAME = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*\.?")
#: Headers whose value afetch decides (framing), or places itself (Host).
_FRAMING = frozenset({"host", "content-length", "transfer-encoding"})
#: Fields HTTP/2 forbids (RFC 9113 §8.2.2): the connection is not HTTP/1.1's.
_CONNECTION_SPECIFIC = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)


def host_key(name: str) -> str:
    """A host name as a URL's host compares with it: lower case, no final dot, IDNA.

    ``--resolve bücher.example:…`` or ``--deny bücher.example`` would otherwise
    never match the URL's ``xn--bcher-kva.example``. ValueError if it is no name.
    """
    name = name.lower().rstrip(".")
    if name.isascii():
        return name
    from yarl import URL

    try:
        return URL.build(scheme="http", host=name).raw_host or name
    except ValueError:
        raise ValueError(f"{name!r} is not a host name") from None


def check_method(method: str) -> str:
    """An RFC 9110 token, or ValueError."""
    if not TOKEN.fullmatch(method):
        raise ValueError(f"{method!r} is not an HTTP method (letters, digits, !#$%&'*+-.^_`|~)")
    return method


def check_header(name: str, value: str) -> None:
    """A token name and a value without controls (CR, LF, NUL...), or ValueError."""
    if not TOKEN.fullmatch(name):
        raise ValueError(f"header name {name!r} is not a token")
    if bad := _CONTROL.search(value):
        raise ValueError(f"header {name!r} contains the control character {bad.group()!r}")
    if name.lower() == "transfer-encoding" and value.strip().lower() != "chunked":
        raise ValueError(f"Transfer-Encoding {value!r}: only 'chunked' can be asked for")


def check_host(host: str) -> None:
    """A host name or IP literal that can be looked up and sent as is, or ValueError."""
    if ":" in host:
        import ipaddress  # 1.4 ms to import: only for IPv6 literals

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
        return
    if len(host) > 253 or not _HOST_NAME.fullmatch(host):
        bad = next((c for c in host if not (c.isalnum() or c in "-_.")), None)
        why = f"contains {bad!r}" if bad else "has an empty label" if host else "is empty"
        raise ValueError(f"host {host!r} {why}")


def check_port(port: int | None) -> None:
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not 1-65535")


def with_defaults(headers: HeaderMap, defaults: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Default headers the request does not set, then the request's own (framing excluded)."""
    own = [(k, v) for k, v in headers.items() if k.lower() not in _FRAMING]
    return [*((k, v) for k, v in defaults if k not in headers), *own]


def prepared_headers(
    headers: HeaderMap, defaults: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], str | None, bool]:
    """What both transports send: (checked header fields without framing, the user's
    ``Host`` or None, whether the body goes chunk-encoded)."""
    fields = with_defaults(headers, defaults)
    check_headers(fields)
    hosts = headers.getall("Host", None)
    host = hosts[-1] if hosts else None  # the last one given, as with curl
    if host is not None:
        check_headers([("Host", host)])
    return fields, host, "Transfer-Encoding" in headers


def chunked(body: bytes) -> bytes:
    """One chunk, then the last: curl's way with ``-H 'Transfer-Encoding: chunked'``."""
    return (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"


def check_headers(headers: Iterable[tuple[str, str]]) -> None:
    """The transports' last guard: nothing that would split the request head is sent."""
    for name, value in headers:
        try:
            check_header(name, value)
        except ValueError as exc:
            raise RequestError(str(exc)) from None


def check_request(request: Request) -> None:
    """The transports' last guard on what a URL and method put on the wire.

    Runs for every request, so the common case is a few C calls: known
    methods and hosts already seen are not matched again. (Ports are checked
    where URLs are read and where the pool picks the port.)
    """
    url = request.url
    host = url.raw_host or ""
    if request.method not in _GOOD_METHODS or host not in _GOOD_HOSTS:
        try:
            check_method(request.method)
            check_host(host)
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        if len(_GOOD_METHODS) < 64:
            _GOOD_METHODS.add(request.method)
        if len(_GOOD_HOSTS) >= 4096:
            _GOOD_HOSTS.clear()
        _GOOD_HOSTS.add(host)
    path = url.raw_path_qs
    if not path.isprintable() or " " in path or not path.isascii():
        raise RequestError("the URL's path contains a control character or a space")


_GOOD_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_GOOD_HOSTS: set[str] = set()


class HeadRenderer:
    """Renders request heads; the run's shared header set is rendered once."""

    def __init__(self, defaults: list[tuple[str, str]]) -> None:
        self.defaults = defaults
        self._blocks: dict[int, tuple[object, tuple[str, str | None, bool]]] = {}

    def render(self, request: Request, host: str, port: int) -> tuple[bytes, bytes | None]:
        """The request head and the body as it goes on the wire."""
        url, headers, body = request.url, request.headers, request.body
        check_request(request)
        block, authority, chunk = self._header_block(headers)
        if authority is None:
            if ":" in host:
                host = f"[{host}]"
            authority = host if port == DEFAULT_PORTS[url.scheme] else f"{host}:{port}"
        lines = f"{request.method} {url.raw_path_qs or '/'} HTTP/1.1\r\nHost: {authority}\r\n"
        lines += block
        if url.raw_user is not None and "Authorization" not in headers:
            lines += f"Authorization: {basic_auth(url)}\r\n"
        if body is not None and "Content-Type" not in headers:
            lines += "Content-Type: application/octet-stream\r\n"
        if chunk:
            lines += "Transfer-Encoding: chunked\r\n"
            body = chunked(body or b"")
        elif body is not None:
            lines += f"Content-Length: {len(body)}\r\n"
        elif request.method in _BODY_METHODS:
            lines += "Content-Length: 0\r\n"
        return (lines + "\r\n").encode(), body

    def render_h2(
        self, request: Request, host: str, port: int
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """An HTTP/2 header list and the body: pseudo-headers first, the user's Host as
        ``:authority``, names lower-cased, no connection-specific fields (RFC 9113 §8.2.2),
        no chunked coding (frames delimit the body)."""
        url, headers, body = request.url, request.headers, request.body
        check_request(request)
        fields, authority, _ = prepared_headers(headers, self.defaults)
        if authority is None:
            if ":" in host:
                host = f"[{host}]"
            authority = host if port == DEFAULT_PORTS[url.scheme] else f"{host}:{port}"
        out = [
            (b":method", request.method.encode()),
            (b":scheme", url.scheme.encode()),
            (b":authority", authority.encode()),
            (b":path", (url.raw_path_qs or "/").encode()),
        ]
        for name, value in fields:
            key = name.lower()
            if key in _CONNECTION_SPECIFIC or (key == "te" and value.lower() != "trailers"):
                continue
            out.append((key.encode(), value.encode("latin-1", "replace")))
        if url.raw_user is not None and "Authorization" not in headers:
            out.append((b"authorization", basic_auth(url).encode()))
        if body is not None and "Content-Type" not in headers:
            out.append((b"content-type", b"application/octet-stream"))
        if body is not None:
            out.append((b"content-length", b"%d" % len(body)))
        elif request.method in _BODY_METHODS:
            out.append((b"content-length", b"0"))
        return out, body

    def _header_block(self, headers: HeaderMap) -> tuple[str, str | None, bool]:
        """(the header lines, the user's Host, chunked?): once per shared header set."""
        shared = isinstance(headers, CIMultiDictProxy)
        if shared and (cached := self._blocks.get(id(headers))) is not None:
            return cached[1]
        fields, host, chunk = prepared_headers(headers, self.defaults)
        block = "".join(f"{name}: {value}\r\n" for name, value in fields)
        result = (block, host, chunk)
        if shared:
            self._blocks[id(headers)] = (headers, result)  # holding it keeps the id unique
        return result


def basic_auth(url: URL) -> str:
    """``user:pass@`` in a URL → a Basic Authorization value."""
    user = unquote(url.raw_user or "")
    password = unquote(url.raw_password or "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


#: Characters a URL reference may hold as they are (RFC 3986 reserved, unreserved, %).
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"


_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def raw_query_of(text: str) -> str | None:
    """The query of URL text as written (None: it has none), with only what may not
    appear in a URL percent-encoded (non-ASCII, controls, a ``%`` that starts no escape).

    yarl re-quotes a query when it parses: ``%2F`` became ``/``, another URI under
    RFC 3986, which breaks signed URLs and caches keyed on the raw URL.
    """
    start = text.find("?")
    if start < 0:
        return None
    end = text.find("#")
    if 0 <= end < start:
        return None  # the "?" is in the fragment
    query = text[start + 1 : end if end > start else None]
    from urllib.parse import quote

    return _BARE_PERCENT.sub("%25", quote(query, safe=_URL_SAFE))


def with_raw_query(url: URL, query: str | None) -> URL:
    """``url`` with its query exactly ``query`` (as :func:`raw_query_of` gave it)."""
    if query is None or query == url.raw_query_string:
        return url
    from yarl import URL

    return URL.build(
        scheme=url.scheme,
        user=url.raw_user,
        password=url.raw_password,
        host=url.raw_host or "",
        port=url.explicit_port,
        path=url.raw_path,
        query_string=query,
        encoded=True,
    )


def location_text(raw: bytes) -> str:
    """A Location value's bytes as a URL reference: trimmed, every other byte kept, those
    that may not appear in a URL (non-ASCII, controls, spaces) percent-encoded."""
    from urllib.parse import quote

    return quote(raw.strip(b" \t"), safe=_URL_SAFE)


def text_of(raw: bytes) -> str:
    """Header bytes as text: UTF-8 when they are, else Latin-1 (RFC 9110's obs-text)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")
