"""Retry policy: whether an attempt's outcome earns another try, and how long to wait.

Pure functions (the clock and the random source are parameters) so the
arithmetic is tested without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from afetch.config import Config
from afetch.errors import ErrorKind

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRYABLE_KINDS = frozenset({ErrorKind.CONNECT, ErrorKind.TIMEOUT, ErrorKind.PROTOCOL})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def backoff(retry: int, config: Config, rand: Callable[[], float] = random.random) -> float:
    """Full-jitter backoff before retry number ``retry`` (0-based)."""
    ceiling = min(config.backoff_cap, config.backoff_base * 2.0**retry)
    return rand() * ceiling


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime  # rare; keeps email out of start-up

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_delay(
    *,
    retries_used: int,
    method: str,
    kind: ErrorKind | None,
    status: int | None,
    retry_after: str | None,
    config: Config,
    now: float,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before the next attempt, or None to stop and record this one."""
    if retries_used >= config.retries:
        return None
    if not config.retry_all and method not in IDEMPOTENT_METHODS:
        return None
    if kind in RETRYABLE_KINDS:
        return backoff(retries_used, config, rand)
    if kind is None and status in RETRYABLE_STATUSES:
        demanded = parse_retry_after(retry_after, now)
        if demanded is None:
            return backoff(retries_used, config, rand)
        # A server asking for longer than we are willing to wait gets its answer recorded.
        return demanded if demanded <= config.retry_max_wait else None
    return None
