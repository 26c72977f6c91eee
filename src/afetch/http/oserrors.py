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
