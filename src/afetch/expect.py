"""Expectations (CI checks): what a response must look like to be ``ok``.

Built once from the command line (``--expect-status``, ``--expect-body``,
``--max-latency``, ``--expect-jq``) and, per request, from a JSON line's ``expect`` object,
whose keys replace the command line's expectation of the same kind.
``check`` turns a response into the list of human-readable failures that
becomes the record's ``failed`` field.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

import orjson

#: Messages for the person running afetch; the CLI sends them to its stderr.
log = logging.getLogger("afetch")

_STATUS_ITEM = re.compile(r"^\s*(?:([1-5])xx|(\d{3})\s*-\s*(\d{3})|(\d{3}))\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class StatusSet:
    """Codes, classes (``2xx``) and ranges (``200-299``); ``text`` is how the user wrote it."""

    ranges: tuple[tuple[int, int], ...]
    text: str

    def __contains__(self, status: int) -> bool:
        # A loop, not any(): this runs for every response and a generator costs more.
        for low, high in self.ranges:  # noqa: SIM110
            if low <= status <= high:
                return True
        return False


DEFAULT_STATUSES = StatusSet(((200, 399),), "200-399")


def parse_statuses(value: str | list[Any]) -> StatusSet:
    """``"200,204,3xx"``, ``"200-299"`` or a JSON list like ``[200, "2xx"]``."""
    items = value.split(",") if isinstance(value, str) else [str(item) for item in value]
    ranges = []
    for item in items:
        match = _STATUS_ITEM.match(item)
        if not match:
            raise ValueError(f"{item.strip()!r} is not a status, class (2xx) or range (200-299)")
        klass, low, high, code = match.groups()
        if klass:
            ranges.append((int(klass) * 100, int(klass) * 100 + 99))
        elif code:
            ranges.append((int(code), int(code)))
        elif int(low) <= int(high):
            ranges.append((int(low), int(high)))
        else:
            raise ValueError(f"{item.strip()!r}: the range is empty")
    if not ranges:
        raise ValueError("no status given")
    return StatusSet(tuple(ranges), ", ".join(item.strip() for item in items))


def compile_regex(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what}: bad regular expression {pattern!r}: {exc}") from exc


_JQ_PROGRAMS: dict[str, Any] = {}  # expression → compiled program (the Config holds the text)


def jq_program(expression: str, what: str = "--expect-jq") -> Any:
    """A compiled jq program, compiled once per expression (libjq, through ``jq``).

    The Expectation keeps the text, not the program: a Config must pickle
    (it goes to worker processes) and a compiled program does not.
    """
    program = _JQ_PROGRAMS.get(expression)
    if program is None:
        import jq  # here: most runs never need libjq (start-up)

        try:
            program = jq.compile(expression)
        except ValueError as exc:
            reason = str(exc).splitlines()[0].removeprefix("jq: error: ")
            raise ValueError(f"{what}: bad jq expression {expression!r}: {reason}") from None
        _JQ_PROGRAMS[expression] = program
    return program


def checked_jq(expression: str) -> str:
    """``--expect-jq``: it must compile, or it is a usage error."""
    jq_program(expression)
    return expression


def _jq_failure(expression: str, body: str | None) -> str | None:
    """Why ``expression`` does not hold on the body as JSON; None when it holds.

    It holds when its first output is truthy (jq's sense: not false, not null).
    """
    if not body or not body.strip():
        return f"jq {expression!r}: body is not JSON"
    try:
        outputs = jq_program(expression).input_text(body).all()
    except ValueError as exc:
        text = str(exc)
        if "parse error" in text:
            return f"jq {expression!r}: body is not JSON"
        return f"jq {expression!r}: {text.splitlines()[0]}"
    if not outputs:
        return f"jq {expression!r} gave no output"
    if expression not in _JQ_SEEN:
        _JQ_SEEN.add(expression)
        _warn_if_not_a_test(expression, outputs[0])
    if outputs[0] is None or outputs[0] is False:
        return f"jq {expression!r} gave {orjson.dumps(outputs[0]).decode()}"
    return None


#: Expressions already run on a body: the shape of their output is looked at once.
_JQ_SEEN: set[str] = set()


def _warn_if_not_a_test(expression: str, first: Any) -> None:
    """jq's meaning is kept (truthy holds), but ``.status = "up"`` (a typo for ``==``)
    holds on every JSON body: an expression whose first output on the first body is
    neither a boolean nor null is almost always a mistake, so it is said once."""
    if first is None or isinstance(first, bool):
        return
    shown = orjson.dumps(first).decode()
    shown = shown if len(shown) <= 60 else shown[:59] + "…"
    log.warning(
        "afetch: warning: jq %r gave %s on the first body, not true or false: it holds for"
        " any value but false and null (to assert a value, compare with ==, e.g."
        " '.status == \"up\"')",
        expression,
        shown,
    )


def body_regex(pattern: str) -> re.Pattern[str]:
    """``--expect-body``."""
    return compile_regex(pattern, "--expect-body")


@dataclass(frozen=True, slots=True)
class Expectation:
    """Everything a response is checked against; ``None`` means "not checked"."""

    statuses: StatusSet = DEFAULT_STATUSES
    body: re.Pattern[str] | None = None
    max_latency_ms: float | None = None
    headers: tuple[tuple[str, re.Pattern[str]], ...] = ()
    #: jq expressions that must each give a truthy first output on the body as JSON.
    jq: tuple[str, ...] = ()
    #: https: the certificate must be valid for at least this many more days.
    cert_days: int | None = None
    #: The response must come over this HTTP version ("1.0", "1.1" or "2").
    http_version: str | None = None

    @property
    def needs_body(self) -> bool:
        return self.body is not None or bool(self.jq)

    def override(self, line: dict[str, Any]) -> Expectation:
        """This expectation with a JSON line's ``expect`` keys put in place."""
        known = {"status", "body", "max_latency_ms", "headers", "jq", "cert_days", "http_version"}
        unknown = sorted(set(line) - known)
        if unknown:
            raise ValueError(f"unknown expect key(s): {', '.join(unknown)}")
        changes: dict[str, Any] = {}
        if "status" in line:
            if not isinstance(line["status"], str | list | int):
                raise ValueError("expect.status must be a list, a string or a number")
            status = line["status"]
            changes["statuses"] = parse_statuses([status] if isinstance(status, int) else status)
        if "body" in line:
            if not isinstance(line["body"], str):
                raise ValueError("expect.body must be a regular expression string")
            changes["body"] = compile_regex(line["body"], "expect.body")
        if "max_latency_ms" in line:
            latency = line["max_latency_ms"]
            if isinstance(latency, bool) or not isinstance(latency, int | float) or latency <= 0:
                raise ValueError("expect.max_latency_ms must be a positive number")
            changes["max_latency_ms"] = float(latency)
        if "headers" in line:
            changes["headers"] = _header_patterns(line["headers"])
        if "cert_days" in line:
            days = line["cert_days"]
            if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                raise ValueError("expect.cert_days must be a whole number of days, 0 or more")
            changes["cert_days"] = days
        if "http_version" in line:
            changes["http_version"] = http_version_of(line["http_version"])
        if "jq" in line:
            value = line["jq"]
            expressions = (value,) if isinstance(value, str) else value
            if not isinstance(expressions, list | tuple) or not all(
                isinstance(e, str) for e in expressions
            ):
                raise ValueError("expect.jq must be a jq expression or a list of them")
            for expression in expressions:
                jq_program(expression, "expect.jq")
            changes["jq"] = tuple(expressions)
        return replace(self, **changes)


HTTP_VERSIONS = ("1.0", "1.1", "2")


def http_version_of(value: Any) -> str:
    """``"2"``, ``2``, ``"1.1"`` or ``1.1`` → the record's spelling of that version."""
    text = (
        str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    )
    text = {"2.0": "2", "1": "1.0"}.get(text, text)
    if text not in HTTP_VERSIONS:
        raise ValueError(f"expect.http_version must be one of {', '.join(HTTP_VERSIONS)}")
    return text


def _header_patterns(value: Any) -> tuple[tuple[str, re.Pattern[str]], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("expect.headers must map header names to regular expressions")
    return tuple(
        (name.lower(), compile_regex(pattern, f"expect.headers.{name}"))
        for name, pattern in value.items()
    )


def check(
    expectation: Expectation,
    *,
    status: int,
    body: str | None,
    elapsed_ms: float,
    headers: dict[str, str],
    tls: dict[str, Any] | None = None,
    http_version: str | None = None,
) -> list[str]:
    """The failed expectations of one response, in a fixed order; empty when all hold."""
    failed = []
    if status not in expectation.statuses:
        failed.append(f"status {status} not in [{expectation.statuses.text}]")
    if expectation.body is not None and not expectation.body.search(body or ""):
        failed.append(f"body did not match {expectation.body.pattern!r}")
    if expectation.max_latency_ms is not None and elapsed_ms > expectation.max_latency_ms:
        failed.append(f"latency {elapsed_ms:.0f} ms > {expectation.max_latency_ms:.0f} ms")
    for name, pattern in expectation.headers:
        value = headers.get(name)
        if value is None:
            failed.append(f"header {name} missing")
        elif not pattern.search(value):
            failed.append(f"header {name}: {value!r} did not match {pattern.pattern!r}")
    for expression in expectation.jq:
        if (reason := _jq_failure(expression, body)) is not None:
            failed.append(reason)
    wanted = expectation.http_version
    if wanted is not None and http_version != wanted:
        failed.append(f"HTTP/{http_version}, not HTTP/{wanted}")
    if expectation.cert_days is not None and tls is not None:  # https responses only
        days_left = tls.get("days_left")
        if days_left is None:
            failed.append("certificate details unavailable")
        elif days_left < 0:  # only with -k: verification refuses it otherwise
            failed.append(f"certificate expired {-days_left} days ago")
        elif days_left < expectation.cert_days:
            failed.append(f"certificate expires in {days_left} days (< {expectation.cert_days})")
    return failed


DEFAULT_EXPECTATION = Expectation()
