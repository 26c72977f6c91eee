"""FetchSpec (a request to make) and FetchResult (what became of it).

These are the only types that cross stages. Both carry the input index,
because completion order is not input order.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from yarl import URL

from afetch.errors import ErrorInfo, ErrorKind
from afetch.expect import Expectation

#: Marks a spec whose input line had no ``id`` (``None`` is a valid JSON id).
NO_ID: Any = type("NoId", (), {"__repr__": lambda self: "NO_ID"})()


# Not frozen: a frozen dataclass sets each field through object.__setattr__,
# which for these two (one of each per request) cost 3 µs a request. Nothing
# changes them after they are built, and nothing hashes them.
@dataclass(slots=True)
class FetchSpec:
    """One request, parsed from one input line."""

    index: int
    url: str
    target: URL
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    id: Any = NO_ID
    timeout: float | None = None
    expect: Expectation | None = None  # the line's own, merged over the command line's
    #: (is an input line, text) as read, for handing the request to a worker process.
    source: tuple[bool, str] | None = None


@dataclass(slots=True)
class FetchResult:
    """One output record; ``to_record`` gives the JSON shape of SPEC §2."""

    index: int
    url: str
    method: str
    ok: bool
    status: int | None
    error: ErrorInfo | None
    attempts: int
    elapsed_ms: float
    id: Any = NO_ID
    final_url: str | None = None
    redirects: tuple[tuple[int, str], ...] = ()
    reason: str | None = None
    content_type: str | None = None
    size: int | None = None
    truncated: bool = False
    timing: dict[str, float | None] | None = None
    headers: dict[str, str | list[str]] | None = None
    body: bytes | None = None
    charset: str | None = None  # declared charset of ``body``
    sha256: str | None = None
    saved_to: str | None = None
    failed: tuple[str, ...] = ()
    #: The peer that answered (the proxy's address when proxied).
    remote_ip: str | None = None
    http_version: str | None = None
    #: The answer came on a kept-alive connection; None when no response arrived.
    reused: bool | None = None
    #: --http2: the origin was moved back to HTTP/1.1 during the run.
    downgraded: bool = False
    #: ``--tls-info``: protocol, cipher and certificate facts of the connection that answered.
    tls: dict[str, Any] | None = None
    #: Failed, then passed when ``--recheck`` tried it again.
    flaky: bool = False
    #: ``error.type`` is ``blocked``: the bot-wall vendor the evidence names.
    blocked_by: str | None = None
    #: ``--repro``: a curl command sending the same request (failed records only).
    repro: str | None = None
    #: ``--warn-on`` covers every reason this record is not ok: a warning, not a failure.
    warn: bool = False
    #: The record's JSON line as a worker process wrote it (``--workers``): written as is.
    line: bytes | None = None

    @classmethod
    def from_line(cls, line: bytes) -> FetchResult:
        """A worker's record back as a whole FetchResult: every sink sees every field.

        The line itself is kept and written as it is. A text body comes back
        as its UTF-8 bytes (the record no longer says which charset it had).
        """
        record = orjson.loads(line)
        error = record["error"]
        body = record.get("body")
        base64_body = record.get("body_encoding") == "base64"
        return cls(
            index=record["index"],
            url=record["url"],
            method=record["method"],
            ok=record["ok"],
            status=record["status"],
            error=ErrorInfo(ErrorKind(error["type"]), error["message"], error.get("phase"))
            if error
            else None,
            attempts=record["attempts"],
            elapsed_ms=record["elapsed_ms"],
            id=record.get("id", NO_ID),
            final_url=record.get("final_url"),
            redirects=tuple((hop["status"], hop["url"]) for hop in record.get("redirects", ())),
            reason=record.get("reason"),
            content_type=record.get("content_type"),
            size=record.get("size"),
            truncated=record.get("truncated", False),
            timing=record.get("timing"),
            headers=record.get("headers"),
            body=None
            if body is None
            else base64.b64decode(body)
            if base64_body
            else body.encode("utf-8"),
            charset=None if body is None or base64_body else "utf-8",
            sha256=record.get("sha256"),
            saved_to=record.get("saved_to"),
            failed=tuple(record.get("failed", ())),
            remote_ip=record.get("remote_ip"),
            http_version=record.get("http_version"),
            reused=record.get("reused"),
            downgraded=record.get("downgraded", False),
            tls=record.get("tls"),
            flaky=record.get("flaky", False),
            blocked_by=record.get("blocked_by"),
            repro=record.get("repro"),
            warn=record.get("warn", False),
            line=line,
        )

    def to_record(self) -> dict[str, Any]:
        """The record as plain JSON-able data; optional fields only when they apply."""
        if self.line is not None:
            return dict(orjson.loads(self.line))
        record: dict[str, Any] = {
            "index": self.index,
            "url": self.url,
            "method": self.method,
            "ok": self.ok,
            "status": self.status,
            "error": None if self.error is None else _error_record(self.error),
            "attempts": self.attempts,
            "elapsed_ms": self.elapsed_ms,
        }
        if self.id is not NO_ID:
            record["id"] = self.id
        if self.final_url is not None:
            record["final_url"] = self.final_url
        if self.redirects:
            record["redirects"] = [{"status": s, "url": u} for s, u in self.redirects]
        if self.status is not None:
            record["reason"] = self.reason
            record["content_type"] = self.content_type
            record["size"] = self.size
            record["http_version"] = self.http_version
            record["reused"] = self.reused
            if self.downgraded:
                record["downgraded"] = True
        if self.remote_ip is not None:
            record["remote_ip"] = self.remote_ip
        if self.truncated:
            record["truncated"] = True
        if self.timing is not None:
            record["timing"] = self.timing
        if self.headers is not None:
            record["headers"] = self.headers
        if self.body is not None:
            record.update(body_fields(self.body, self.charset))
        if self.sha256 is not None:
            record["sha256"] = self.sha256
        if self.saved_to is not None:
            record["saved_to"] = self.saved_to
        if self.failed:
            record["failed"] = list(self.failed)
        if self.tls is not None:
            record["tls"] = self.tls
        if self.flaky:
            record["flaky"] = True
        if self.blocked_by is not None:
            record["blocked_by"] = self.blocked_by
        if self.repro is not None:
            record["repro"] = self.repro
        if self.warn:
            record["warn"] = True
        return record


def _error_record(error: ErrorInfo) -> dict[str, str]:
    record = {"type": error.kind.value, "message": error.message}
    if error.phase is not None:
        record["phase"] = error.phase
    return record


def check_name(result: FetchResult) -> str:
    """How a check is named in reports and matched against a baseline: its id, else its URL."""
    if result.id is not NO_ID:
        return result.id if isinstance(result.id, str) else orjson.dumps(result.id).decode()
    return result.url if result.method == "GET" else f"{result.method} {result.url}"


def body_fields(body: bytes, charset: str | None) -> dict[str, str]:
    """Text when the body decodes cleanly with its charset (default UTF-8), else base64.

    A charset Python does not know (``utf8mb4`` from MySQL-backed sites, ``none``)
    is read as UTF-8 when the bytes are UTF-8, as browsers fall back.
    """
    for name in (charset or "utf-8", "utf-8"):
        try:
            return {"body": body.decode(name)}
        except UnicodeDecodeError:
            break
        except LookupError:
            continue
    return {"body": base64.b64encode(body).decode("ascii"), "body_encoding": "base64"}


def invalid_input(index: int, text: str, method: str, message: str, id: Any = NO_ID) -> FetchResult:
    """The record for a line that could not become a request."""
    return FetchResult(
        index=index,
        url=text,
        method=method,
        ok=False,
        status=None,
        error=ErrorInfo(ErrorKind.INVALID_INPUT, message),
        attempts=0,
        elapsed_ms=0.0,
        id=id,
    )


def unanswered(
    spec: FetchSpec, kind: ErrorKind, message: str, *, attempts: int = 0, elapsed_ms: float = 0.0
) -> FetchResult:
    """The record of a request that got no answer of its own (cancelled, skipped, a bug)."""
    return FetchResult(
        index=spec.index,
        url=spec.url,
        method=spec.method,
        ok=False,
        status=None,
        error=ErrorInfo(kind, message),
        attempts=attempts,
        elapsed_ms=elapsed_ms,
        id=spec.id,
    )


def cancelled(spec: FetchSpec, elapsed_ms: float, attempts: int) -> FetchResult:
    """The record for a request the run stopped before it finished."""
    message = "the run was interrupted before this request finished"
    return unanswered(spec, ErrorKind.CANCELLED, message, attempts=attempts, elapsed_ms=elapsed_ms)


def skipped(spec: FetchSpec, message: str) -> FetchResult:
    """The record for a request the run chose not to attempt (``--max-host-errors``)."""
    return unanswered(spec, ErrorKind.SKIPPED, message)


def internal_error(spec: FetchSpec, exc: BaseException, attempts: int) -> FetchResult:
    """The record for a request that hit a bug in afetch (never expected)."""
    message = f"{type(exc).__name__}: {exc}"
    return unanswered(spec, ErrorKind.INTERNAL, message, attempts=attempts)
