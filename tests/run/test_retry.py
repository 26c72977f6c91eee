"""Retry policy arithmetic, with a fake random source and clock (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from afetch.config import Config
from afetch.errors import ErrorKind
from afetch.retry import backoff, parse_retry_after, retry_delay

CONFIG = Config(retries=3, retry_max_wait=30)


def delay(**overrides: object) -> float | None:
    arguments: dict[str, object] = {
        "retries_used": 0,
        "method": "GET",
        "kind": None,
        "status": 503,
        "retry_after": None,
        "config": CONFIG,
        "now": 1_000_000.0,
        "rand": lambda: 1.0,
    }
    arguments.update(overrides)
    return retry_delay(**arguments)  # type: ignore[arg-type]


def test_backoff_doubles_and_is_capped() -> None:
    """0.5 s * 2^k, capped at 10 s, scaled by the jitter draw."""
    assert [backoff(k, CONFIG, lambda: 1.0) for k in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff(3, CONFIG, lambda: 0.25) == 1.0


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    """Both forms of Retry-After give seconds from now; junk gives None."""
    now = 1_700_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 7, UTC), usegmt=True)
    assert parse_retry_after("5", now) == 5
    assert parse_retry_after(date, now) == pytest.approx(7, abs=1)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize("kind", [ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.PROTOCOL])
def test_transient_errors_are_retried(kind: ErrorKind) -> None:
    """Connect, timeout and protocol errors earn a retry."""
    assert delay(kind=kind, status=None) == 0.5


@pytest.mark.parametrize("kind", [ErrorKind.DNS, ErrorKind.TLS, ErrorKind.TOO_LARGE])
def test_permanent_errors_are_not_retried(kind: ErrorKind) -> None:
    """DNS and TLS failures will not heal by retrying."""
    assert delay(kind=kind, status=None) is None


@pytest.mark.parametrize(
    ("status", "retried"),
    [(429, True), (502, True), (503, True), (504, True), (500, False), (404, False)],
)
def test_only_some_statuses_are_retried(status: int, retried: bool) -> None:
    """429/502/503/504 are retried; other statuses are answers."""
    assert (delay(status=status) is not None) is retried


def test_non_idempotent_methods_need_retry_all() -> None:
    """POST is retried only with --retry-all."""
    assert delay(method="POST") is None
    assert delay(method="POST", config=Config(retries=3, retry_all=True)) == 0.5


def test_retries_stop_when_used_up() -> None:
    """--retries N allows N retries, then the outcome is recorded."""
    assert delay(retries_used=2) is not None
    assert delay(retries_used=3) is None


def test_retry_after_is_honoured_up_to_the_maximum() -> None:
    """A demand within --retry-max-wait is obeyed; a longer one ends the retries."""
    assert delay(status=429, retry_after="3") == 3
    assert delay(status=429, retry_after="31") is None
