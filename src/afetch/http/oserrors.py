"""Socket, resolver and TLS errors (the standard library's) → afetch's exception tree.

Both transports meet these under their own wrappers; this is where an
``OSError`` from connecting becomes a DnsError, TlsError or ConnectError,
with a message that names the host and says why in one line.
"""

from __future__ import annotations

import os
import socket
import ssl

from afetch.errors import ConnectError, DnsError, TlsError, TransportError


def connect_failure(host: str, port: int, cause: OSError) -> TransportError:
    """The exception for a connection to ``host:port`` that failed with ``cause``."""
    message = f"{host}:{port}: {describe(cause)}"
    if isinstance(cause, socket.gaierror):
        return DnsError(message)
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        return TlsError(message)
    return ConnectError(message)


def describe(cause: BaseException) -> str:
    """Why, in a few words: the OS's text for an errno, the TLS library's reason."""
    # Hand-made SSL errors lack the attributes the ssl module sets on real ones.
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {getattr(cause, 'verify_message', None) or cause}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS error: {getattr(cause, 'reason', None) or cause}"
    if not isinstance(cause, OSError):
        return str(cause) or type(cause).__name__
    if isinstance(cause, socket.gaierror) or not cause.errno or cause.errno < 0:
        return cause.strerror or str(cause) or type(cause).__name__
    return os.strerror(cause.errno)


#: OpenSSL reasons worth a sentence: what the user can do about them.
_TLS_REASONS = {
    "WRONG_VERSION_NUMBER": "the server did not answer with TLS (plain HTTP on an https URL?)",
    "UNSUPPORTED_PROTOCOL": "the server offers only a TLS version too old to accept",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the server accepts no TLS version afetch offers",
    "NO_PROTOCOLS_AVAILABLE": "no TLS version both sides accept",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server refused the handshake (no common cipher?)",
    "UNEXPECTED_EOF_WHILE_READING": "the server closed the connection during the handshake",
    "RECORD_LAYER_FAILURE": "the server sent something that is not TLS",
    "PACKET_LENGTH_TOO_LONG": "the server sent something that is not TLS",
}


def tls_failure(host: str, port: int, cause: BaseException) -> TlsError:
    """A failure after TCP connected and before TLS was ready: always ``tls``, said plainly."""
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = describe(cause)
    elif isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "reason", None) or ""
        hint = _TLS_REASONS.get(reason)
        why = f"TLS handshake failed: {hint} ({reason})" if hint else describe(cause)
    elif isinstance(cause, ConnectionError | EOFError) or not str(cause):
        why = "TLS handshake failed: the server closed the connection during the handshake"
    else:
        why = f"TLS handshake failed: {describe(cause)}"
    return TlsError(f"{host}:{port}: {why}")
