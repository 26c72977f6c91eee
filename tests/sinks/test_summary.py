"""Tally, percentiles and the exit status decision."""

from __future__ import annotations

import random

import pytest

from afetch.errors import ErrorInfo, ErrorKind
from afetch.models import FetchResult
from afetch.sinks.summary import render
from afetch.sinks.tally import LatencyHistogram, Tally
from afetch.sinks.verdict import ExitStatus, exit_status


def result(
    ok: bool = True, status: int | None = 200, kind: ErrorKind | None = None, ms: float = 10
) -> FetchResult:
    error = ErrorInfo(kind, "x") if kind else None
    return FetchResult(0, "http://h/", "GET", ok, status, error, 1, ms)


def test_percentiles_are_within_one_percent() -> None:
    """The log histogram answers p50/p95/p99 within its bucket width."""
    histogram = LatencyHistogram()
    values = [random.uniform(1, 1000) for _ in range(20_000)]
    for value in values:
        histogram.add(value)
    values.sort()
    for fraction in (0.5, 0.95, 0.99):
        exact = values[int(fraction * len(values)) - 1]
        assert histogram.percentile(fraction) == pytest.approx(exact, rel=0.02)
    assert LatencyHistogram().percentile(0.5) is None


def test_tally_counts_status_classes_and_error_kinds() -> None:
    """The summary counts by status class and by error kind."""
    tally = Tally(clock=0.0)
    tally.add(result())
    tally.add(result(ok=False, status=404, kind=ErrorKind.HTTP))
    tally.add(result(ok=False, status=None, kind=ErrorKind.TIMEOUT))
    text = render(tally, now=2.0)
    assert "3 requests, 1 ok, 2 not ok" in text
    single = Tally(clock=0.0)
    single.add(result())
    assert "afetch: 1 request, 1 ok, 0 not ok" in render(single, now=1.0)
    assert "2xx 1" in text
    assert "4xx 1" in text
    assert "http 1" in text
    assert "timeout 1" in text
    assert "p50" in text
    assert "1.5 req/s" in text


def test_exit_status_is_decided_in_one_place() -> None:
    """0 all ok, 1 some not ok, --exit-zero, signals and a closed pipe win."""
    tally = Tally()
    tally.add(result())
    assert exit_status(tally) is ExitStatus.OK
    tally.add(result(ok=False, status=500, kind=ErrorKind.HTTP))
    assert exit_status(tally) is ExitStatus.FAILURES
    assert exit_status(tally, exit_zero=True) is ExitStatus.OK
    assert exit_status(tally, signal_status=ExitStatus.SIGINT) == 130
    assert exit_status(tally, broken_pipe=True) == 141


def test_failures_are_grouped_folded_and_counted() -> None:
    """One line per kind and reason, most frequent first, names listed then counted."""
    tally = Tally(clock=0.0)
    for i in range(5):
        timeout = ErrorInfo(ErrorKind.TIMEOUT, "no complete response within 10s")
        tally.add(FetchResult(i, f"http://h/{i}", "GET", False, None, timeout, 1, 10.0))
    failed = ("status 404 not in [200]",)
    http = ErrorInfo(ErrorKind.HTTP, failed[0])
    tally.add(
        FetchResult(9, "http://h/x", "GET", False, 404, http, 1, 5.0, id="api", failed=failed)
    )
    text = render(tally, now=1.0)
    assert "  failed (6):\n" in text
    assert (
        "    timeout (5)  no complete response within 10s: http://h/0, http://h/1, http://h/2"
        " and 2 more\n"
    ) in text
    assert text.endswith("    http  status 404 not in [200]: api (404)")
    assert "\x1b[" not in text
    assert "\x1b[31m1 not ok" not in render(tally, now=1.0, colour=True)
    assert "\x1b[31m6 not ok\x1b[0m" in render(tally, now=1.0, colour=True)


def test_many_kinds_of_failure_end_with_a_count() -> None:
    """Past ten kinds of failure the summary ends with a count of the rest."""
    tally = Tally(clock=0.0)
    for i in range(15):
        error = ErrorInfo(ErrorKind.CONNECT, f"reason {i}")
        tally.add(FetchResult(i, f"http://h/{i}", "GET", False, None, error, 1, 1.0))
    assert render(tally, now=1.0).endswith("    ... and 5 more failures of 5 other kinds")
