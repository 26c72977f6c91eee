"""Exceptions → error kinds: the only module that knows aiohttp's and http1's exceptions.

| kind                 | when                                                          |
|----------------------|---------------------------------------------------------------|
| invalid_input        | the input line could not become a request                     |
| dns                  | the host name did not resolve                                 |
| connect              | TCP connection refused, unreachable, proxy refused            |
| tls                  | handshake failed, certificate not trusted                     |
| timeout              | ``--timeout`` or ``--connect-timeout`` ran out                |
| too_many_redirects   | more than ``--max-redirects`` redirects                       |
| protocol             | malformed response, connection reset or closed mid-response   |
| too_large            | a response limit other than ``--max-body`` (header size)      |
| http                 | a response arrived but its status or an expectation failed    |
| cancelled            | the run was interrupted before the request finished           |
| internal             | a bug in afetch; never expected                               |
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from dataclasses import dataclass
from enum import StrEnum


class ErrorKind(StrEnum):
    """The closed set of ways a request can fail (SPEC §2)."""

    INVALID_INPUT = "invalid_input"
    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    PROTOCOL = "protocol"
    TOO_LARGE = "too_large"
    HTTP = "http"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What a record's ``error`` field holds."""

    kind: ErrorKind
    message: str


class FetchFailure(Exception):
    """Raised by afetch's own code when it decides a request failed."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ConnectError(Exception):
    """No connection: name lookup, TCP connect or TLS handshake failed."""

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(f"{host}:{port}: {cause}")
        self.host = host
        self.port = port
        self.os_error = cause


class ResponseError(Exception):
    """The response could not be read as HTTP: malformed, cut short or over a limit."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


class RequestError(ValueError):
    """The request itself cannot be sent (a line break in a header value)."""


# Phrases aiohttp's parser uses when a header or status line is over its size
# limit; it reports those, like a garbage status line, as a 400 response error.
_TOO_LARGE_HINTS = ("got more than", "too long", "too many headers", "header field too large")


_MESSAGE_LIMIT = 300


def classify(exc: BaseException) -> ErrorInfo:
    """Map one exception to one error kind, most specific class first."""
    kind = _kind_of(exc)
    # One line, bounded: parser errors quote the offending bytes at length.
    message = " ".join(_message_of(exc, kind).split())
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "…"
    return ErrorInfo(kind, message)


def _kind_of(exc: BaseException) -> ErrorKind:
    if isinstance(exc, FetchFailure):
        return exc.kind
    # TimeoutError first: aiohttp's ServerTimeoutError is also a connection error.
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, ConnectError):
        return _cause_kind(exc.os_error)
    if isinstance(exc, ResponseError):
        return ErrorKind.TOO_LARGE if exc.too_large else ErrorKind.PROTOCOL
    if isinstance(exc, RequestError):
        return ErrorKind.INVALID_INPUT
    if "aiohttp" in sys.modules:  # imported only when a request went through aiohttp
        kind = _aiohttp_kind(exc)
        if kind is not None:
            return kind
    if isinstance(exc, socket.gaierror):
        return ErrorKind.DNS
    if isinstance(exc, ssl.SSLError):
        return ErrorKind.TLS
    if isinstance(exc, ConnectionError):
        return ErrorKind.CONNECT
    return ErrorKind.INTERNAL


def _aiohttp_kind(exc: BaseException) -> ErrorKind | None:
    import aiohttp
    from aiohttp import http_exceptions

    if isinstance(exc, aiohttp.ClientConnectorDNSError | socket.gaierror):
        return ErrorKind.DNS
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch | ssl.SSLError):
        return ErrorKind.TLS
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _cause_kind(exc.os_error)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return ErrorKind.TOO_MANY_REDIRECTS
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return ErrorKind.CONNECT
    if isinstance(exc, aiohttp.ClientResponseError | http_exceptions.HttpProcessingError):
        return _too_large_or_protocol(exc)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return _bad_url_kind(exc)
    # Payload errors, resets and disconnects after the request was sent, and any
    # other client error, mean the response could not be read as HTTP.
    if isinstance(exc, aiohttp.ClientError):
        return ErrorKind.PROTOCOL
    return None


def _cause_kind(cause: OSError) -> ErrorKind:
    if isinstance(cause, socket.gaierror):
        return ErrorKind.DNS
    if isinstance(cause, ssl.SSLError):
        return ErrorKind.TLS
    return ErrorKind.CONNECT


def _too_large_or_protocol(exc: BaseException) -> ErrorKind:
    from aiohttp import http_exceptions

    if isinstance(exc, http_exceptions.LineTooLong):
        return ErrorKind.TOO_LARGE
    text = str(getattr(exc, "message", "") or exc).lower()
    if any(hint in text for hint in _TOO_LARGE_HINTS):
        return ErrorKind.TOO_LARGE
    return ErrorKind.PROTOCOL


def _bad_url_kind(exc: BaseException) -> ErrorKind:
    import aiohttp

    # A bad URL that came from a server's Location header is the server's fault.
    if isinstance(exc, aiohttp.RedirectClientError):
        return ErrorKind.PROTOCOL
    return ErrorKind.INVALID_INPUT


def _message_of(exc: BaseException, kind: ErrorKind) -> str:
    if isinstance(exc, FetchFailure):
        return exc.message
    if kind is ErrorKind.TIMEOUT:
        return str(exc) or "timed out"
    if isinstance(exc, ConnectError):
        return f"{exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, ResponseError | RequestError):
        return str(exc)
    if "aiohttp" in sys.modules:
        import aiohttp

        if isinstance(exc, aiohttp.ClientResponseError):
            return exc.message or type(exc).__name__
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"{exc.host}:{exc.port}: {_os_reason(exc.os_error)}"
    if isinstance(exc, ssl.SSLError):
        return _os_reason(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _os_reason(cause: OSError) -> str:
    # Hand-made SSL errors lack the attributes the ssl module sets on real ones.
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {getattr(cause, 'verify_message', None) or cause}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS error: {getattr(cause, 'reason', None) or cause}"
    if isinstance(cause, socket.gaierror) or not cause.errno or cause.errno < 0:
        return cause.strerror or str(cause)
    return os.strerror(cause.errno)
