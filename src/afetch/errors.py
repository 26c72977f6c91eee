"""Exceptions → error kinds: afetch's own exception tree and the one place it is classified.

Transports raise only this tree (each maps its own library's exceptions in
one place: ``http/lean`` and ``http/aiohttp_transport.py``), so nothing here
knows aiohttp or llhttp.

| kind               | raised as      | when                                    |
|--------------------|----------------|-----------------------------------------|
| invalid_input      | RequestError   | the request cannot be sent as given     |
| dns                | DnsError       | the host name did not resolve           |
| connect            | ConnectError   | refused, unreachable, proxy refused     |
| tls                | TlsError       | handshake failed, certificate untrusted |
| timeout            | TimeoutError   | ``--timeout`` / ``--connect-timeout``   |
| too_many_redirects | FetchFailure   | more than ``--max-redirects``           |
| protocol           | ResponseError  | malformed or cut-short response         |
| too_large          | TooLargeError  | a response limit other than max-body    |
| http               | (the response) | status or an expectation failed         |
| cancelled          | (the run)      | the run stopped before it finished      |
| skipped            | (the run)      | --max-host-errors gave up on its host   |
| internal           | anything else  | a bug in afetch; never expected         |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


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
    BLOCKED = "blocked"
    POLICY = "policy"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What a record's ``error`` field holds."""

    kind: ErrorKind
    message: str
    #: Where a timeout or a connection-level failure happened: dns, connect, tls, ttfb, body.
    phase: str | None = None


class FetchFailure(Exception):
    """Raised by afetch's own request logic when it decides a request failed."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class OutputFailure(Exception):
    """A sink could not write (``--output-dir``, the JUnit report): the run ends, not a request.

    Never classified: a full disk is no fault of the URL being fetched, and
    making every remaining request ``internal`` would hide the one cause.
    """


class TransportError(Exception):
    """What a transport raises for a request that failed; the class is the kind."""

    kind: ClassVar[ErrorKind] = ErrorKind.PROTOCOL


class DnsError(TransportError):
    """The host name did not resolve (NXDOMAIN, no address, resolver failure)."""

    kind = ErrorKind.DNS


class PolicyError(TransportError):
    """The address policy (--deny-private, --allow, --deny) refused every address."""

    kind = ErrorKind.POLICY


class ConnectError(TransportError):
    """No TCP connection: refused, unreachable, reset during connect, proxy refused."""

    kind = ErrorKind.CONNECT


class TlsError(TransportError):
    """The TLS handshake failed or the certificate was not trusted."""

    kind = ErrorKind.TLS


class ResponseError(TransportError):
    """The response could not be read as HTTP: malformed or cut short."""

    kind = ErrorKind.PROTOCOL


class TooLargeError(ResponseError):
    """The response broke a limit other than ``--max-body`` (header size, count)."""

    kind = ErrorKind.TOO_LARGE


class RequestError(TransportError):
    """The request cannot be sent as given (a line break in a header value)."""

    kind = ErrorKind.INVALID_INPUT


_MESSAGE_LIMIT = 300


def classify(exc: BaseException) -> ErrorInfo:
    """Map one exception to one error kind: afetch's tree, timeouts, and bugs."""
    if isinstance(exc, FetchFailure | TransportError):
        kind = exc.kind
        message = str(exc) or type(exc).__name__
    elif isinstance(exc, TimeoutError):
        kind, message = ErrorKind.TIMEOUT, str(exc) or "timed out"
    else:
        text = str(exc).strip()
        kind = ErrorKind.INTERNAL
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    # One line, bounded: parser errors quote the offending bytes at length.
    message = " ".join(message.split())
    if len(message) > _MESSAGE_LIMIT:
        message = message[: _MESSAGE_LIMIT - 1] + "…"
    return ErrorInfo(kind, message)
