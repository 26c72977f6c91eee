"""Run options: one frozen object built by the CLI (or the library caller).

Also the parsers for the units of SPEC §1 (durations, sizes, rates, status
lists): each raises ``ValueError`` with a message fit for a usage error.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from afetch.defaults import DEFAULT_CONCURRENCY
from afetch.expect import DEFAULT_EXPECTATION, Expectation
from afetch.http.options import Pin, TransportOptions
from afetch.http.policy import AddressPolicy
from afetch.redact import REDACT, Redaction
from afetch.tls import TlsOptions
from afetch.warn import WarnOn

if TYPE_CHECKING:
    import ssl

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BODY = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the engine and fetch stages need to know about a run."""

    concurrency: int = DEFAULT_CONCURRENCY
    #: At most this many requests in flight to one host (name and port); 0: no cap.
    per_host: int = 0
    #: ``--http2`` ("alpn": h2 offered on https), ``--http2-prior-knowledge`` ("prior": h2c on
    #: http too), ``--http1.1`` ("off", the default).
    http2: Literal["off", "alpn", "prior"] = "off"
    #: Attempt starts per second across the run; None: as fast as concurrency allows.
    rate: float | None = None
    #: ``--repro``: failed records carry a curl command that sends the same request.
    repro: bool = False
    #: ``--warn-on``: failures only for these reasons are warnings (``warn: true``).
    warn_on: WarnOn | None = None
    #: Slow a host down on 429/503 and pace it by its rate-limit headers (``--no-adaptive``).
    adaptive: bool = True
    #: ``--verbose``: each change of a host's pace is said on stderr.
    log_pacing: bool = False
    #: ``--host-interval``: seconds at least between request starts to one host.
    host_interval: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float | None = None
    retries: int = 2
    retry_all: bool = False
    retry_max_wait: float = 30.0
    max_body: int = DEFAULT_MAX_BODY
    default_scheme: str = "https"
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    user_agent: str | None = None
    #: ``-H 'Name:'``: default headers not to send (lower-case names), as curl does.
    removed_headers: tuple[str, ...] = ()
    follow: bool = True
    max_redirects: int = 10
    #: Request body of every request (``-d``/``--json``); a JSON line's own body wins.
    body: bytes | None = None
    #: ``--proxy``: None reads the environment, ``""`` disables proxies.
    proxy: str | None = None
    #: ``--noproxy``: hosts reached directly; None leaves NO_PROXY's list.
    no_proxy: str | None = None
    #: Client for direct requests: "lean" (afetch.http.lean) or "aiohttp".
    http_client: str = "lean"
    #: TLS settings (``--cacert``, ``-k``, ``--cert``); None is aiohttp's verified default.
    tls: ssl.SSLContext | None = None
    #: The options ``tls`` was built from; worker processes rebuild it from these.
    tls_options: TlsOptions | None = None
    #: ``--resolve``: names pinned to addresses, as curl's option does.
    resolve: tuple[Pin, ...] = ()
    #: ``--dns-servers``: name servers ("IP" or "IP:PORT") instead of the system's.
    dns_servers: tuple[str, ...] = ()
    #: ``-4``/``-6``: connect over that IP version only; 0: both (Happy Eyeballs).
    ip_version: int = 0
    #: ``-b FILE``: cookies read from a Netscape-format file into the run's jar.
    cookie_file: str | None = None
    #: ``--cookie-jar FILE``: the jar written there at the end of the run.
    cookie_jar: str | None = None
    #: ``--digest``: (user, password) answering a Digest challenge on the first origin.
    digest_user: tuple[str, str] | None = None
    #: ``--netrc``: (host, login, password) for requests to exactly that host.
    netrc: tuple[tuple[str, str, str], ...] = ()
    #: ``--deny-private``, ``--allow``, ``--deny``: which addresses may be dialled.
    policy: AddressPolicy | None = None
    #: ``--include`` / ``--exclude``: URLs selected before any request (the rest skipped).
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    #: Idle keep-alive connections kept at most; None: as many as ``concurrency``.
    max_idle: int | None = None
    #: ``--output-dir``: save each body there (must exist).
    output_dir: Path | None = None
    #: What a response must satisfy to be ok (default: status 200-399).
    expect: Expectation = DEFAULT_EXPECTATION
    capture_headers: bool = False
    capture_body: bool = False
    hash_body: bool = False
    #: ``--tls-info``: add the handshake's facts to records of https responses.
    tls_info: bool = False
    #: ``--max-host-errors``: give a host up after this many connection failures in a row.
    max_host_errors: int | None = None
    #: Retry k waits uniform(0, min(cap, base * 2**k)) seconds (full jitter).
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    #: What records, reports and messages mask (URL passwords, tokens, credentials).
    redaction: Redaction = REDACT

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.per_host < 0:
            raise ValueError("per-host must be 0 or more")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.max_redirects < 0:
            raise ValueError("max-redirects must be 0 or more")
        if self.http_client not in ("lean", "aiohttp"):
            raise ValueError("http-client must be 'lean' or 'aiohttp'")
        if self.max_body < 0:
            raise ValueError("max-body must be 0 or more")
        if self.default_scheme not in ("http", "https"):
            raise ValueError("default-scheme must be http or https")
        if self.ip_version not in (0, 4, 6):
            raise ValueError("ip-version must be 4, 6 or 0 (both)")

    def transport_options(self) -> TransportOptions:
        """What the transports need of this run (they never see the whole Config)."""
        return TransportOptions(
            concurrency=self.concurrency,
            idle_connections=self.idle_connections,
            connect_timeout=self.connect_timeout,
            tls=self.tls,
            proxy=self.proxy,
            no_proxy=self.no_proxy,
            http_client=self.http_client,
            resolve=self.resolve,
            dns_servers=self.dns_servers,
            ip_version=self.ip_version,
            user_agent=self.user_agent,
            removed_headers=self.removed_headers,
            policy=self.policy,
            http2=self.http2,
            streams_per_origin=self.per_host or self.concurrency,
            tls_options=self.tls_options,
        )

    @property
    def idle_connections(self) -> int:
        """Idle keep-alive connections kept in all (the CLI fits them to the open-file limit)."""
        from afetch.limits import IDLE_PER_SLOT

        return IDLE_PER_SLOT * self.concurrency if self.max_idle is None else self.max_idle


@dataclass(frozen=True, slots=True)
class UiOptions:
    """What the user sees besides the records: stderr output and the exit status."""

    progress: bool = False
    summary: bool = False
    verbose: bool = False
    exit_zero: bool = False
    color: bool = False  # ANSI colours in the summary (--color)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Whole-run thresholds: with any of them, they decide the exit status."""

    max_error_rate: float | None = None  # a fraction: 0.05 for --max-error-rate 5%
    max_p95_ms: float | None = None  # over ok records
    min_requests: int | None = None

    @property
    def any(self) -> bool:
        return (self.max_error_rate, self.max_p95_ms, self.min_requests) != (None, None, None)


@dataclass(frozen=True, slots=True)
class RunControl:
    """How the run as a whole is steered: order, skipping, limits, reports."""

    ordered: bool = False
    dedupe: bool = False
    deadline: float | None = None
    max_failures: int | None = None
    shard: tuple[int, int] | None = None  # (K, N): indices ≡ K-1 (mod N)
    shard_key: Literal["index", "host"] = "index"  # --shard-key host: by a hash of the host
    resume: bool = False
    junit: str | None = None
    workers: int | Literal["auto"] = 1  # auto: more processes while one is CPU-bound
    thresholds: Thresholds = Thresholds()
    recheck: int = 0
    recheck_delay: float = 5.0
    markdown: str | None = None  # --markdown PATH
    github: bool = False  # --github: step summary and annotations


def parse_percent(text: str) -> float:
    """``"5%"`` or ``"5"`` (percent), 0 to 100 → a fraction."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%?\s*", text)
    if not match or float(match.group(1)) > 100:
        raise ValueError(f"{text!r} is not a percentage from 0 to 100 (e.g. 5%, 0.5%)")
    return float(match.group(1)) / 100


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` with 1 ≤ K ≤ N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"{text!r} is not K/N with 1 <= K <= N (e.g. 2/8)")
    return int(match.group(1)), int(match.group(2))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_DURATION_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"250ms"``, ``"1.5s"``, ``"2m"``, ``"1h"`` or plain seconds → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 5, 250ms, 1.5s, 2m, 1h)")
    return float(match.group(1)) * _DURATION_UNIT[match.group(2)]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([KMG]i?B|[KMG]|B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes, ``KiB/MiB/GiB`` (or ``K/M/G``, base 1024), ``KB/MB/GB`` (base 1000)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 4096, 512K, 10MiB, 1GB)")
    number, unit = float(match.group(1)), (match.group(2) or "B").upper()
    powers = {"K": 1, "M": 2, "G": 3}
    if unit == "B":
        factor = 1
    elif unit.endswith("IB") or len(unit) == 1:
        factor = 1024 ** powers[unit[0]]
    else:
        factor = 1000 ** powers[unit[0]]
    return int(number * factor)


_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*/\s*(s|m|h)\s*$")


def parse_rate(text: str) -> float:
    """``"N/s"``, ``"N/m"``, ``"N/h"`` → requests per second."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a rate (e.g. 10/s, 600/m, 1000/h)")
    return float(match.group(1)) / _DURATION_UNIT[match.group(2)]


def parse_header(text: str) -> tuple[str, str | None]:
    """``"Name: value"`` → ``(name, value)``; controls (CR, LF, NUL...) are refused.

    curl's rules for the two short forms: ``"Name:"`` removes a header afetch
    would send (value None), ``"Name;"`` sends it with an empty value.
    """
    from afetch.http.request import check_header

    if "\r" in text or "\n" in text:
        raise ValueError(f"{text!r} contains a line break")
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep and name.endswith(";") and name[:-1].strip():
        name = name[:-1].strip()
        check_header(name, "")
        return name, ""
    if not sep or not name:
        raise ValueError(f"{text!r} is not a header (expected 'Name: value')")
    value = value.strip()
    check_header(name, value)
    return name, (value or None)


def parse_proxy(text: str) -> str:
    """``--proxy``: ``http://host:port`` (or ``https://``), ``host:port``, or ``''`` for none."""
    if text == "":
        return text
    from yarl import URL

    try:
        url = URL(text if "://" in text else f"http://{text}")
        port = url.explicit_port
    except ValueError:
        url, port = None, None
    if url is None or not url.host:
        raise ValueError(f"{text!r} is not a proxy URL (e.g. http://proxy.example:3128)")
    if url.scheme not in ("http", "https", "socks5", "socks5h", "socks4", "socks4a"):
        raise ValueError(
            f"{text!r}: {url.scheme} proxies are not supported"
            " (http, https, socks5, socks5h, socks4, socks4a)"
        )
    if "://" not in text and port is None:
        raise ValueError(f"{text!r} is not a proxy URL (e.g. http://proxy.example:3128)")
    return text


def parse_user_agent(text: str) -> str:
    """``-A``: a header value like any other."""
    from afetch.http.request import check_header

    check_header("User-Agent", text)
    return text


def parse_resolve(text: str) -> Pin:
    """curl's ``HOST:PORT:ADDR[,ADDR...]``; PORT may be ``*``, IPv6 in brackets."""
    import ipaddress

    host, sep, rest = text.partition(":")
    port_text, sep2, addresses_text = rest.partition(":")
    if not (sep and sep2 and host and addresses_text):
        raise ValueError(f"{text!r} is not HOST:PORT:ADDR (e.g. example.com:443:127.0.0.1)")
    if port_text == "*":
        port = None
    elif port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise ValueError(f"{text!r}: port must be 1-65535 or *")
    addresses = []
    for item in addresses_text.split(","):
        try:
            addresses.append(str(ipaddress.ip_address(item.strip().strip("[]"))))
        except ValueError:
            raise ValueError(f"{text!r}: {item.strip()!r} is not an IP address") from None
    from afetch.http.request import host_key

    try:
        name = host_key(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not a host name") from None
    return Pin(name, port, tuple(addresses))


def parse_dns_servers(text: str) -> tuple[str, ...]:
    """curl's ``--dns-servers ADDR[:PORT][,ADDR[:PORT]...]`` (IPv6 as ``[ADDR]:PORT``)."""
    import ipaddress

    servers = []
    for item in (part.strip() for part in text.split(",")):
        host, port = item, ""
        if item.startswith("["):
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        elif item.count(":") == 1:
            host, _, port = item.partition(":")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address (optionally :PORT)") from None
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{item!r}: port must be 1-65535")
        shown = f"[{address}]" if address.version == 6 and port else str(address)
        servers.append(f"{shown}:{port}" if port else shown)
    return tuple(servers)


def read_payload(value: str, option: str) -> bytes:
    """``STRING`` as UTF-8, or ``@FILE``'s bytes exactly (curl's --data-binary)."""
    if not value.startswith("@"):
        return value.encode("utf-8")
    path = value[1:]
    if path in ("", "-"):
        raise ValueError(f"{option} @FILE needs a file name (stdin carries the URLs)")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc


def basic_auth(user: str) -> tuple[str, str]:
    """``-u USER:PASS`` → an Authorization header (Basic, UTF-8 as curl sends it)."""
    name, _, password = user.partition(":")
    if not name:
        raise ValueError("--user needs USER:PASS")
    if any(ord(c) < 32 or ord(c) == 127 for c in user):
        raise ValueError("--user contains a control character")
    token = base64.b64encode(f"{name}:{password}".encode()).decode("ascii")
    return "Authorization", f"Basic {token}"


def cookie_header(text: str) -> tuple[str, str]:
    """``-b "k=v; k2=v2"`` → a Cookie header (cookie files are not read)."""
    pairs = [pair.strip() for pair in text.split(";") if pair.strip()]
    if not pairs or any("=" not in pair for pair in pairs):
        raise ValueError(f"{text!r} is not 'name=value; name2=value2' (cookie files are not read)")
    from afetch.http.request import check_header

    check_header("Cookie", text)
    return "Cookie", "; ".join(pairs)


def read_netrc(path: str | None, *, required: bool) -> tuple[tuple[str, str, str], ...]:
    """``--netrc`` (``~/.netrc``), ``--netrc-file FILE``; ``required``: a missing file is an
    error (``--netrc-optional``: it is not)."""
    import netrc as netrc_module
    import os

    where = path or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        parsed = netrc_module.netrc(where)
    except FileNotFoundError:
        if required:
            raise ValueError(f"--netrc: {where} does not exist") from None
        return ()
    except (OSError, netrc_module.NetrcParseError) as exc:
        raise ValueError(f"--netrc: cannot read {where}: {exc}") from exc
    return tuple(
        (host.lower(), login or "", password or "")
        for host, (login, _, password) in parsed.hosts.items()
    )


def request_shape(
    *,
    method: str | None,
    headers: tuple[tuple[str, str | None], ...],
    data: tuple[str, ...],
    json_text: str | None,
    user: str | None,
    cookie: str | None,
    bearer: str | None = None,
    digest: bool = False,
) -> tuple[str, tuple[tuple[str, str], ...], bytes | None, tuple[str, ...]]:
    """Method, headers, body and the removed headers (``-H 'Name:'``) from curl-style
    options; -H always has the last word."""
    if data and json_text is not None:
        raise ValueError("give --data or --json, not both")
    extra: list[tuple[str, str]] = []
    body: bytes | None = None
    if data:
        body = b"&".join(read_payload(item, "--data") for item in data)
        extra.append(("Content-Type", "application/x-www-form-urlencoded"))
    if json_text is not None:
        body = read_payload(json_text, "--json")
        extra += [("Content-Type", "application/json"), ("Accept", "application/json")]
    if user is not None and bearer is not None:
        raise ValueError("give -u/--user or --oauth2-bearer, not both")
    if digest and user is None:
        raise ValueError("--digest needs -u USER:PASS")
    if user is not None:
        header = basic_auth(user)  # checks USER:PASS
        if not digest:  # with --digest the credentials answer a challenge instead
            extra.append(header)
    if bearer is not None:
        if not bearer or any(c in bearer for c in "\r\n\0"):
            raise ValueError("--oauth2-bearer needs a token (no control characters)")
        extra.append(("Authorization", f"Bearer {bearer}"))
    if cookie is not None:
        extra.append(cookie_header(cookie))
    given = {name.lower() for name, _ in headers}
    removed = tuple(dict.fromkeys(name.lower() for name, value in headers if value is None))
    sent = tuple((name, value) for name, value in headers if value is not None)
    merged = tuple(h for h in extra if h[0].lower() not in given) + sent
    return method or ("POST" if body is not None else "GET"), merged, body, removed
