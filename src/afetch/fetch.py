"""One request: FetchSpec → FetchResult, never raising for a URL's failure.

Each attempt runs under one ``asyncio.timeout`` covering connect, headers,
redirects and body together; retries and their waits sit outside it.
Redirects are followed here rather than by the HTTP client so that the redirect
list, the method change of 301/302/303 and the dropping of credentials on
a change of origin follow curl's rules exactly.

Each hop goes through the run's Transport (``afetch.http``): this module
does not know which HTTP client carried it.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from afetch.bot_walls import PEEK, WALL_STATUSES, bot_wall
from afetch.config import Config
from afetch.errors import ErrorInfo, ErrorKind, FetchFailure, OutputFailure, classify
from afetch.expect import Expectation, check
from afetch.http.base import Request, Response, ResponseHeaders, Transport
from afetch.http.certs import tls_facts
from afetch.http.request import check_host, check_port, raw_query_of, with_raw_query
from afetch.http.timing import HopTiming, begin_hop
from afetch.models import FetchResult, FetchSpec
from afetch.pacing import Pacer
from afetch.ratelimit import Budget, read_budget
from afetch.redact import NO_REDACTION, Redaction
from afetch.repro import curl_command
from afetch.retry import RETRYABLE_STATUSES, retry_delay
from afetch.sinks.bodies import BodyFile
from afetch.warn import WarnOn

if TYPE_CHECKING:
    from afetch.cookies import CookieJar  # http.cookiejar and urllib.request: 15 ms

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Headers that carry credentials: never sent to another origin after a redirect.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_BODY_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "transfer-encoding"}
)
_CHEAP_REDIRECT_BODY = 64 * 1024


@dataclass(slots=True)
class Client:
    """What every request of a run shares: the transport and the pacing."""

    transport: Transport
    pacer: Pacer
    #: ``-b FILE`` / ``--cookie-jar``: the run's cookies (None: requests are independent).
    cookies: CookieJar | None = None

    async def close(self) -> None:
        try:
            await self.transport.close()
        finally:
            if self.cookies is not None:
                self.cookies.save()


@dataclass(slots=True)
class _Attempt:
    """What one attempt learned; filled in as it goes so a failure keeps what came before."""

    status: int | None = None
    reason: str | None = None
    content_type: str | None = None
    final_url: str | None = None
    size: int | None = None
    truncated: bool = False
    retry_after: str | None = None
    redirects: list[tuple[int, str]] = field(default_factory=list)
    error: ErrorInfo | None = None
    total_ms: float = 0.0
    headers: dict[str, str | list[str]] | None = None
    body: bytes | None = None
    charset: str | None = None
    sha256: str | None = None
    saved_to: str | None = None
    header_values: dict[str, str] = field(default_factory=dict)  # for header expectations
    hop: HopTiming | None = None  # the exchange that produced the recorded outcome
    tls: bool = False
    http_version: str | None = None
    #: A 403/429/503/999's headers and first KiB: is it a bot wall? (afetch.bot_walls)
    wall_headers: list[tuple[str, str]] | None = None
    peek: bytes = b""
    #: What the server's rate-limit headers say is left (afetch.ratelimit).
    budget: Budget | None = None
    #: The attempt's timeout, which a wait for an HTTP/2 stream pushes back.
    limit: asyncio.Timeout | None = None


async def fetch_one(
    client: Client,
    spec: FetchSpec,
    config: Config,
    on_attempt: Callable[[], None] | None = None,
) -> FetchResult:
    """Fetch one spec with retries; every failure comes back as a result."""
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        if on_attempt is not None:
            on_attempt()
        pacer = client.pacer
        if pacer.active:
            await pacer.before_attempt(spec.target)
        attempt_started = pacer.clock()
        attempt = await _attempt(client, spec, config)
        answered = attempt.error is None and attempt.status not in RETRYABLE_STATUSES
        if answered and attempt.budget is None:
            break  # the common case: an answer that no policy acts on
        pacer.after_attempt(
            spec.target, attempt.status, attempt.retry_after, attempt.budget, attempt_started
        )
        if answered:
            break
        delay = retry_delay(
            retries_used=attempts - 1,
            method=spec.method,
            kind=attempt.error.kind if attempt.error else None,
            status=attempt.status,
            retry_after=attempt.retry_after,
            config=config,
            now=time.time(),
        )
        if delay is None:
            break
        await asyncio.sleep(delay)
    return _result(spec, config, attempt, attempts, (time.perf_counter() - started) * 1000)


def _result(
    spec: FetchSpec, config: Config, attempt: _Attempt, attempts: int, elapsed_ms: float
) -> FetchResult:
    status = attempt.status
    error = attempt.error
    failed: list[str] = []
    expectation = spec.expect or config.expect
    tls = None
    if status is not None and attempt.tls and (config.tls_info or expectation.cert_days):
        tls = tls_facts(attempt.hop.ssl_object if attempt.hop else None)
    if error is None and status is not None:
        failed = check(
            expectation,
            status=status,
            body=_text(attempt.body, attempt.charset),
            elapsed_ms=elapsed_ms,
            headers=attempt.header_values,
            tls=tls,
            http_version=attempt.http_version,
        )
        if failed:
            error = ErrorInfo(ErrorKind.HTTP, "; ".join(failed))
    blocked_by = None
    if error is not None and error.kind is ErrorKind.HTTP and attempt.wall_headers is not None:
        assert status is not None
        if (wall := bot_wall(status, attempt.wall_headers, attempt.peek)) is not None:
            blocked_by, evidence = wall
            error = ErrorInfo(
                ErrorKind.BLOCKED, f"a {blocked_by} bot wall answered {status}: {evidence}"
            )
    warn = (
        error is not None
        and config.warn_on is not None
        and _warned(config.warn_on, error.kind, status, expectation, elapsed_ms, len(failed))
    )
    if error is not None and config.redaction.enabled:  # a Location, a URL in a message
        error = replace(error, message=config.redaction.text(error.message))
    return FetchResult(
        index=spec.index,
        url=spec.url,
        method=spec.method,
        ok=error is None,
        status=status,
        error=error,
        attempts=attempts,
        elapsed_ms=round(elapsed_ms, 3),
        id=spec.id,
        blocked_by=blocked_by,
        warn=warn,
        repro=(
            curl_command(spec, config, attempt.hop.remote_ip if attempt.hop else None)
            if config.repro and error is not None
            else None
        ),
        final_url=attempt.final_url,
        redirects=tuple(attempt.redirects),
        reason=attempt.reason,
        content_type=attempt.content_type,
        size=attempt.size,
        truncated=attempt.truncated,
        timing=(
            attempt.hop.phases(attempt.total_ms, attempt.tls)
            if attempt.hop
            else {"total_ms": round(attempt.total_ms, 3)}
        ),
        headers=attempt.headers,
        body=attempt.body if config.capture_body else None,
        charset=attempt.charset,
        failed=tuple(failed),
        sha256=attempt.sha256,
        saved_to=attempt.saved_to,
        remote_ip=attempt.hop.remote_ip if attempt.hop else None,
        http_version=attempt.http_version,
        reused=attempt.hop.reused if attempt.hop and status is not None else None,
        downgraded=attempt.hop is not None and attempt.hop.downgraded and status is not None,
        tls=tls,
    )


def _warned(
    warn_on: WarnOn,
    kind: ErrorKind,
    status: int | None,
    expectation: Expectation,
    elapsed_ms: float,
    missed: int,
) -> bool:
    """``--warn-on`` covers every reason the request failed."""
    status_missed = status is not None and status not in expectation.statuses
    limit = expectation.max_latency_ms
    slow = limit is not None and elapsed_ms > limit
    return warn_on.covers(
        kind,
        status,
        status_missed=status_missed,
        slow=slow,
        other_missed=missed > status_missed + slow,
    )


async def _attempt(client: Client, spec: FetchSpec, config: Config) -> _Attempt:
    attempt = _Attempt()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(spec.timeout or config.timeout) as attempt.limit:
            await _exchange(client, spec, config, attempt)
    except OutputFailure:
        raise  # the run's fault, not this URL's: it ends the run
    except Exception as exc:  # every failure of this URL becomes data
        error = classify(exc)
        if error.kind is ErrorKind.TIMEOUT and not str(exc):
            error = replace(
                error, message=f"no complete response within {spec.timeout or config.timeout:g}s"
            )
        attempt.error = _with_phase(error, attempt)
    attempt.total_ms = (time.perf_counter() - started) * 1000
    return attempt


async def _exchange(client: Client, spec: FetchSpec, config: Config, attempt: _Attempt) -> None:
    url, method = spec.target, spec.method
    body = spec.body if spec.body is not None else config.body
    headers = request_headers(config, spec)
    jar = client.cookies
    first_url, answered = url, False  # its origin is only asked for on a 401 (--digest)
    while True:
        attempt.hop, attempt.tls = begin_hop(), url.scheme == "https"
        attempt.hop.limit = attempt.limit
        sent = headers if jar is None else _with_cookies(headers, jar.header_for(url))
        exchange = client.transport.send(Request(method, url, sent, body), attempt.hop)
        async with exchange as response:
            attempt.hop.headers = time.perf_counter()
            if jar is not None:
                jar.learn(url, response.headers.items())
            if (
                response.status == 401
                and config.digest_user is not None
                and not answered
                and _origin(url) == _origin(first_url)
            ):
                answered = True  # once: a second 401 is the answer
                if (answer := _digest_answer(response, config, method, url)) is not None:
                    await _drain_small(response)
                    headers = CIMultiDict(headers)
                    headers["Authorization"] = answer
                    continue
            location = response.location
            if config.follow and response.status in REDIRECT_STATUSES and location:
                if len(attempt.redirects) >= config.max_redirects:
                    raise FetchFailure(
                        ErrorKind.TOO_MANY_REDIRECTS,
                        f"more than {config.max_redirects} redirects",
                    )
                attempt.redirects.append((response.status, config.redaction.url(str(url))))
                await _drain_small(response)
                next_url = _redirect_target(url, location)
                method, body, headers = _redirected_request(
                    response.status, method, body, headers, url, next_url
                )
                url = next_url
                continue
            # spec.url is already the target's text: str() of a URL costs µs per request.
            final_url = spec.url if url is spec.target else config.redaction.url(str(url))
            _record_response(attempt, response, final_url, spec, config)
            await _drain(response, spec, config, attempt)
            return


#: The phase these kinds happen in, whatever the clock says.
_KIND_PHASES = {ErrorKind.DNS: "dns", ErrorKind.CONNECT: "connect", ErrorKind.TLS: "tls"}


def _with_phase(error: ErrorInfo, attempt: _Attempt) -> ErrorInfo:
    """A timeout or a connection-level failure says where it happened (``error.phase``)."""
    if error.kind is ErrorKind.TIMEOUT:
        where = attempt.hop.phase(attempt.tls) if attempt.hop is not None else "connect"
        return replace(error, phase=where, message=f"{error.message} (in {where})")
    if (phase := _KIND_PHASES.get(error.kind)) is not None:
        return replace(error, phase=phase)
    return error


def _digest_answer(response: Response, config: Config, method: str, url: URL) -> str | None:
    """``--digest``: the Authorization answering this 401's challenge (None: none offered)."""
    from afetch.digest import authorization, challenge  # hashlib: only runs that need it

    params = challenge(response.headers.get("WWW-Authenticate"))
    if params is None or config.digest_user is None:
        return None
    user, password = config.digest_user
    return authorization(params, user, password, method, url.raw_path_qs or "/")


def _with_cookies(
    headers: CIMultiDict[str] | CIMultiDictProxy[str], jar_cookies: str | None
) -> CIMultiDict[str] | CIMultiDictProxy[str]:
    """The jar's cookies for this hop joined to any -b cookies (one Cookie header)."""
    if jar_cookies is None:
        return headers
    given = headers.get("Cookie")
    merged: CIMultiDict[str] = CIMultiDict(headers)
    merged["Cookie"] = jar_cookies if not given else f"{given}; {jar_cookies}"
    return merged


def request_headers(config: Config, spec: FetchSpec) -> CIMultiDict[str] | CIMultiDictProxy[str]:
    """Command-line headers, with a JSON line's headers replacing those of the same name;
    ``--netrc`` credentials for the first URL's host (a redirect to another origin drops
    them with every credential header)."""
    if not spec.headers and not config.netrc:
        return _shared_headers(config.headers)  # the common case: built once per run
    headers: CIMultiDict[str] = CIMultiDict(config.headers)
    for name, _ in spec.headers:
        headers.popall(name, None)
    headers.extend(spec.headers)
    if config.netrc and (login := _netrc_login(config, spec)) is not None:
        headers["Authorization"] = login
    return headers


def _netrc_login(config: Config, spec: FetchSpec) -> str | None:
    """Basic credentials for the host exactly (no ``default`` entry), unless the request
    has its own (``-u``, a header, the URL's userinfo: they win, as in curl)."""
    target = spec.target
    if target.raw_user is not None:
        return None
    if any(name.lower() == "authorization" for name, _ in (*config.headers, *spec.headers)):
        return None
    host = (target.host or "").lower()
    for machine, login, password in config.netrc:
        if machine == host:
            token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
            return f"Basic {token}"
    return None


def _text(body: bytes | None, charset: str | None) -> str | None:
    """The body as text for a body expectation; undecodable bytes never match."""
    if body is None:
        return None
    try:
        return body.decode(charset or "utf-8", "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


@functools.lru_cache(maxsize=8)
def _shared_headers(headers: tuple[tuple[str, str], ...]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(headers))


def _record_response(
    attempt: _Attempt, response: Response, final_url: str, spec: FetchSpec, config: Config
) -> None:
    attempt.status = response.status
    attempt.http_version = response.http_version
    attempt.reason = response.reason
    attempt.content_type = response.headers.get("Content-Type")
    attempt.final_url = final_url
    attempt.retry_after = response.headers.get("Retry-After")
    attempt.budget = read_budget(response.headers)
    if response.status in WALL_STATUSES:
        attempt.wall_headers = list(response.headers.items())
    if config.capture_headers:
        attempt.headers = header_record(response.headers, config.redaction)
    if (spec.expect or config.expect).headers:
        for name, value in response.headers.items():
            attempt.header_values.setdefault(name.lower(), value)


def header_record(
    headers: ResponseHeaders, redaction: Redaction = NO_REDACTION
) -> dict[str, str | list[str]]:
    """Names lower-cased; a name sent more than once becomes a list, in order; credential
    and cookie values masked (afetch.redact)."""
    record: dict[str, str | list[str]] = {}
    for name, value in headers.items():
        key = name.lower()
        if redaction.enabled:
            value = redaction.header(key, value)
        seen = record.get(key)
        if seen is None:
            record[key] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            record[key] = [seen, value]
    return record


async def _drain(response: Response, spec: FetchSpec, config: Config, attempt: _Attempt) -> None:
    """Read the body up to ``--max-body`` bytes (after decoding), keeping only what was asked."""
    cap = config.max_body
    size = 0
    digest = None
    if config.hash_body:
        import hashlib  # here, not at the top: most runs never need it (start-up)

        digest = hashlib.sha256()
    keep = config.capture_body or (spec.expect or config.expect).needs_body
    kept: list[bytes] | None = [] if keep else None
    saved = (
        await BodyFile.open(config.output_dir, spec.index, spec.target)
        if config.output_dir
        else None
    )
    try:
        content = response.content
        while chunk := await content.readany():
            if size + len(chunk) > cap:
                # Leaving the rest unread closes the connection rather than reusing it.
                chunk = chunk[: cap - size]
                attempt.truncated = True
            size += len(chunk)
            if digest is not None:
                digest.update(chunk)
            if kept is not None:
                kept.append(chunk)
            if attempt.wall_headers is not None and len(attempt.peek) < PEEK:
                attempt.peek += chunk[: PEEK - len(attempt.peek)]
            if saved is not None:
                await saved.write(chunk)
            if attempt.truncated:
                break
    except BaseException:
        if saved is not None:
            saved.discard()
        raise
    attempt.size = size
    attempt.sha256 = digest.hexdigest() if digest is not None else None
    attempt.saved_to = await saved.commit() if saved is not None else None
    if kept is not None:
        attempt.body = b"".join(kept)
        attempt.charset = response.charset


async def _drain_small(response: Response) -> None:
    """Read a short redirect body so its connection can be reused.

    A chunked one too (node sends redirects so), as long as it stays short:
    the connection is kept only if its body is read to the end.
    """
    length = response.content_length
    if length is not None:
        if length <= _CHEAP_REDIRECT_BODY:
            await response.read()
        return
    if "chunked" not in (response.headers.get("Transfer-Encoding") or "").lower():
        return  # delimited by the connection's end: nothing to keep
    read = 0
    while read <= _CHEAP_REDIRECT_BODY and (piece := await response.content.readany()):
        read += len(piece)


def _redirect_target(current: URL, location: str) -> URL:
    try:
        target = with_raw_query(current.join(URL(location)), raw_query_of(location))
        if target.scheme in ("http", "https"):
            check_host(target.raw_host or "")
            check_port(target.explicit_port)
    except ValueError as exc:
        raise FetchFailure(ErrorKind.PROTOCOL, f"bad redirect Location {location!r}") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise FetchFailure(ErrorKind.PROTOCOL, f"redirect to unsupported URL {location!r}")
    return target.with_fragment(None)


def _redirected_request(
    status: int,
    method: str,
    body: bytes | None,
    headers: CIMultiDict[str] | CIMultiDictProxy[str],
    current: URL,
    target: URL,
) -> tuple[str, bytes | None, CIMultiDict[str] | CIMultiDictProxy[str]]:
    """Method, body and headers for the next hop, as browsers and curl do it."""
    to_get = (status == 303 and method not in ("GET", "HEAD")) or (
        status in (301, 302) and method == "POST"
    )
    dropped: set[str] = set()
    if to_get:
        method, body = "GET", None
        dropped |= _BODY_HEADERS
    if _origin(current) != _origin(target):
        dropped |= CREDENTIAL_HEADERS | {"host"}  # a custom Host goes to the first host only
    if dropped:
        headers = CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in dropped)
    return method, body, headers


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port
