"""What a transport needs to know about a run: one frozen value, and the wire's constants.

The transports read this, never the run's ``Config`` (``Config.transport_options()``
builds it), so ``afetch.http`` can be read, tested and reused on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # ssl costs 8 ms to import; --help and --version do not need it
    import ssl

    from afetch.http.policy import AddressPolicy
    from afetch.tls import TlsOptions

#: The port a URL without one means, per scheme.
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Longest response header line (status line or one field) accepted. curl
#: accepts 100 KiB for one header; we allow 64 KiB, far above what real
#: servers send (large CSP and Set-Cookie headers stay under 16 KiB).
MAX_HEADER_LINE = 64 * 1024
MAX_HEADER_COUNT = 256


@dataclass(frozen=True, slots=True)
class Pin:
    """``--resolve HOST:PORT:ADDR[,ADDR...]``; port None is curl's ``*`` (any port)."""

    host: str
    port: int | None
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """The part of a run's options that decides how requests reach servers."""

    #: Requests in flight at most: the aiohttp pool is sized to match.
    concurrency: int = 50
    #: Idle keep-alive connections kept in all (both transports).
    idle_connections: int = 200
    connect_timeout: float | None = None
    #: The run's client SSLContext; None: the system's trust store, loaded when needed.
    tls: ssl.SSLContext | None = None
    #: ``--proxy``: None reads the environment, ``""`` disables proxies.
    proxy: str | None = None
    #: ``--noproxy``: hosts reached directly; None leaves NO_PROXY's list.
    no_proxy: str | None = None
    #: Client for direct requests: "lean" or "aiohttp".
    http_client: str = "lean"
    resolve: tuple[Pin, ...] = ()
    dns_servers: tuple[str, ...] = ()
    #: 4 or 6: that IP version only; 0: both (Happy Eyeballs).
    ip_version: int = 0
    #: None: afetch's own; "": none sent (``-A ''``).
    user_agent: str | None = None
    #: ``-H 'Name:'``: default headers not to send (lower-case names).
    removed_headers: tuple[str, ...] = ()
    #: Which addresses may be dialled (``--deny-private``, ``--allow``, ``--deny``).
    policy: AddressPolicy | None = None
    #: ``--http2``: "alpn" offers h2 on https, "prior" also speaks h2c on http; "off": 1.1.
    http2: Literal["off", "alpn", "prior"] = "off"
    #: HTTP/2 streams one connection carries at most (``--per-host``, else ``-c``).
    streams_per_origin: int = 100
    #: What ``tls`` was made from, to make it again (a context offering only HTTP/1.1).
    tls_options: TlsOptions | None = None
