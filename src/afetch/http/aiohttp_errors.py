"""aiohttp's exceptions → afetch's tree: the one place that names them (``translate``).

A test walks aiohttp's ``ClientError`` and ``HttpProcessingError`` trees and
fails if any of them would fall through to ``internal``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import http_exceptions

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
from afetch.http.oserrors import connect_failure, describe

if TYPE_CHECKING:
    pass


# Phrases aiohttp's parser uses when a header or status line is over its size
# limit; it reports those, like a garbage status line, as a 400 response error.
_TOO_LARGE_HINTS = ("got more than", "too long", "too many headers", "header field too large")


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
