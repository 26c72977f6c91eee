"""errors.classify: every exception maps to exactly one kind, never 'internal' for aiohttp's."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import aiohttp
import pytest
from aiohttp import client_exceptions, http_exceptions
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from afetch.errors import ErrorKind, FetchFailure, classify


def all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | all_subclasses(sub)
    return found


REQUEST = aiohttp.RequestInfo(URL("http://h.example/"), "GET", CIMultiDictProxy(CIMultiDict()))
KEY = ConnectionKey("h.example", 443, True, True, None, None, None)


def instance_of(cls: type) -> BaseException:
    """Build any aiohttp client error the way aiohttp itself would."""
    if issubclass(cls, client_exceptions.ClientConnectorCertificateError):
        return cls(KEY, ssl.SSLCertVerificationError("bad cert"))
    if issubclass(cls, client_exceptions.UnixClientConnectorError):
        return cls("/run/x.sock", KEY, OSError(2, "missing"))
    if issubclass(cls, client_exceptions.ClientConnectorDNSError):
        return cls(KEY, socket.gaierror(-2, "Name or service not known"))
    if issubclass(cls, client_exceptions.ClientConnectorError):
        return cls(KEY, OSError(111, "refused"))
    if issubclass(cls, aiohttp.ClientResponseError):
        return cls(REQUEST, (), status=400, message="bad")
    if issubclass(cls, aiohttp.InvalidURL):
        return cls(URL("http://x"), "bad")
    if issubclass(cls, aiohttp.ServerFingerprintMismatch):
        return cls(b"a", b"b", "h", 443)
    return cls("boom")


@pytest.mark.parametrize(
    "cls",
    sorted(all_subclasses(aiohttp.ClientError) | {aiohttp.ClientError}, key=lambda c: c.__name__),
)
def test_no_aiohttp_client_error_falls_through_to_internal(cls: type) -> None:
    """Walks aiohttp's whole ClientError tree: each subclass has a real kind."""
    info = classify(instance_of(cls))
    assert info.kind is not ErrorKind.INTERNAL, cls
    assert info.message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError(), ErrorKind.TIMEOUT),
        (aiohttp.ConnectionTimeoutError("connect"), ErrorKind.TIMEOUT),
        (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(-2, "x")), ErrorKind.DNS),
        (aiohttp.ClientConnectorError(KEY, socket.gaierror(-2, "x")), ErrorKind.DNS),
        (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "x")), ErrorKind.CONNECT),
        (
            aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError("x")),
            ErrorKind.TLS,
        ),
        (ssl.SSLError("x"), ErrorKind.TLS),
        (aiohttp.ServerDisconnectedError(), ErrorKind.PROTOCOL),
        (aiohttp.ClientPayloadError("short"), ErrorKind.PROTOCOL),
        (http_exceptions.LineTooLong(b"x", "8190", "9000"), ErrorKind.TOO_LARGE),
        (http_exceptions.BadStatusLine(b"HELLO"), ErrorKind.PROTOCOL),
        (FetchFailure(ErrorKind.TOO_MANY_REDIRECTS, "loop"), ErrorKind.TOO_MANY_REDIRECTS),
        (ConnectionResetError(), ErrorKind.CONNECT),
        (ZeroDivisionError(), ErrorKind.INTERNAL),
    ],
)
def test_known_exceptions_map_to_their_kind(exc: BaseException, kind: ErrorKind) -> None:
    """The most specific class decides: timeouts before connection errors, DNS before connect."""
    assert classify(exc).kind is kind


def _response_error(message: str) -> Any:
    return aiohttp.ClientResponseError(REQUEST, (), status=400, message=message)


def test_a_400_parse_error_is_too_large_only_for_size_limits() -> None:
    """aiohttp reports a garbage status line and an oversized header both as 400."""
    assert (
        classify(_response_error("Got more than 65536 bytes when reading")).kind
        is ErrorKind.TOO_LARGE
    )
    assert classify(_response_error("Bad status line 'HELLO'")).kind is ErrorKind.PROTOCOL


def test_messages_are_one_bounded_line() -> None:
    """Parser errors quoting kilobytes of junk become one short line."""
    info = classify(aiohttp.ClientPayloadError("x\n" * 1000))
    assert "\n" not in info.message
    assert len(info.message) <= 300
