"""TLS settings → one ssl.SSLContext for the run (verification on by default).

Built before the run starts so an unreadable CA or client certificate is a
usage error, not a failure of every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ssl costs 8 ms to import; --help and --version do not need it
    import ssl


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """The TLS options as given, so a worker process can build the same context."""

    insecure: bool = False
    cacert: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext | None:
        return build_context(
            insecure=self.insecure, cacert=self.cacert, cert=self.cert, key=self.key
        )


def build_context(
    *,
    insecure: bool = False,
    cacert: str | None = None,
    cert: str | None = None,
    key: str | None = None,
) -> ssl.SSLContext | None:
    """None when every setting is the default (aiohttp's own verified context is used)."""
    if not (insecure or cacert or cert or key):
        return None
    if key and not cert:
        raise ValueError("--key needs --cert")
    import ssl

    # Like curl, --cacert replaces the system CA store rather than adding to it.
    context = ssl.create_default_context(cafile=cacert)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key)
    return context
