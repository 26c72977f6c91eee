"""Errors: each transport maps its library's exceptions into afetch's tree; classify is total."""

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

from afetch.errors import (
    ConnectError,
    DnsError,
    ErrorKind,
    FetchFailure,
    RequestError,
    ResponseError,
    TlsError,
    TooLargeError,
    TransportError,
    classify,
)
from afetch.http.aiohttp_errors import translate
from afetch.http.oserrors import connect_failure


def tree(cls: type[BaseException]) -> set[type[BaseException]]:
    """The class and all its subclasses."""
    found: set[type[BaseException]] = {cls}
    sub: type[BaseException]
    for sub in cls.__subclasses__():
        found |= tree(sub)
    return found


REQUEST = aiohttp.RequestInfo(URL("http://h.example/"), "GET", CIMultiDictProxy(CIMultiDict()))
KEY = ConnectionKey("h.example", 443, True, True, None, None, None)


def _name(cls: type[BaseException]) -> str:
    return cls.__name__


def instance_of(cls: type[BaseException]) -> BaseException:
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


AFETCH_TREE = (TransportError, FetchFailure, TimeoutError)


CLIENT_ERRORS = sorted(tree(aiohttp.ClientError), key=_name)
PARSER_ERRORS = sorted(tree(http_exceptions.HttpProcessingError), key=_name)


@pytest.mark.parametrize("cls", CLIENT_ERRORS)
def test_the_aiohttp_transport_maps_every_client_error(cls: type[BaseException]) -> None:
    """Walks aiohttp's whole ClientError tree: each becomes afetch's own, with a real kind."""
    mapped = translate(instance_of(cls))
    assert isinstance(mapped, AFETCH_TREE), cls
    info = classify(mapped)
    assert info.kind is not ErrorKind.INTERNAL, cls
    assert info.message


@pytest.mark.parametrize("cls", PARSER_ERRORS)
def test_the_aiohttp_transport_maps_every_parser_error(cls: type[BaseException]) -> None:
    """aiohttp's parser errors (raised from body reads) are protocol or too_large."""
    try:
        exc = cls()
    except TypeError:
        exc = cls(b"x", "8190", "9000") if cls is http_exceptions.LineTooLong else cls(b"junk")
    assert classify(translate(exc) or exc).kind in (ErrorKind.PROTOCOL, ErrorKind.TOO_LARGE)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
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
        (http_exceptions.BadStatusLine("HELLO"), ErrorKind.PROTOCOL),
        (ConnectionResetError(), ErrorKind.CONNECT),
        (socket.gaierror(-2, "x"), ErrorKind.DNS),
    ],
)
def test_aiohttp_exceptions_map_to_their_kind(exc: BaseException, kind: ErrorKind) -> None:
    """The most specific class decides: timeouts before connection errors, DNS before connect."""
    mapped = translate(exc)
    assert mapped is not None
    assert classify(mapped).kind is kind


def test_what_is_not_aiohttps_passes_through() -> None:
    """translate leaves a bug a bug: it is not turned into a network error."""
    assert translate(ZeroDivisionError()) is None


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (TimeoutError(), ErrorKind.TIMEOUT),
        (DnsError("x"), ErrorKind.DNS),
        (ConnectError("x"), ErrorKind.CONNECT),
        (TlsError("x"), ErrorKind.TLS),
        (ResponseError("x"), ErrorKind.PROTOCOL),
        (TooLargeError("x"), ErrorKind.TOO_LARGE),
        (RequestError("x"), ErrorKind.INVALID_INPUT),
        (FetchFailure(ErrorKind.TOO_MANY_REDIRECTS, "loop"), ErrorKind.TOO_MANY_REDIRECTS),
        (ConnectionResetError(), ErrorKind.INTERNAL),  # a transport must have mapped it
        (ZeroDivisionError(), ErrorKind.INTERNAL),
    ],
)
def test_classify_knows_only_afetchs_tree(exc: BaseException, kind: ErrorKind) -> None:
    """classify maps afetch's exceptions and TimeoutError; anything else is a bug."""
    assert classify(exc).kind is kind


@pytest.mark.parametrize(
    ("cause", "cls"),
    [
        (socket.gaierror(-2, "Name or service not known"), DnsError),
        (ssl.SSLCertVerificationError("x"), TlsError),
        (ssl.SSLError("x"), TlsError),
        (ConnectionRefusedError(111, "refused"), ConnectError),
        (OSError(113, "no route"), ConnectError),
        (OSError("no address"), ConnectError),
    ],
)
def test_connect_failures_from_the_os(cause: OSError, cls: type) -> None:
    """What connecting raises becomes dns, tls or connect, naming host and port."""
    mapped = connect_failure("h.example", 443, cause)
    assert type(mapped) is cls
    assert str(mapped).startswith("h.example:443: ")


def _response_error(message: str) -> Any:
    return aiohttp.ClientResponseError(REQUEST, (), status=400, message=message)


def test_a_400_parse_error_is_too_large_only_for_size_limits() -> None:
    """aiohttp reports a garbage status line and an oversized header both as 400."""
    too_large = translate(_response_error("Got more than 65536 bytes when reading"))
    garbage = translate(_response_error("Bad status line 'HELLO'"))
    assert too_large is not None
    assert garbage is not None
    assert classify(too_large).kind is ErrorKind.TOO_LARGE
    assert classify(garbage).kind is ErrorKind.PROTOCOL


def test_messages_are_one_bounded_line() -> None:
    """Parser errors quoting kilobytes of junk become one short line."""
    info = classify(ResponseError("x\n" * 1000))
    assert "\n" not in info.message
    assert len(info.message) <= 300
