"""Pacing: the one per-host authority (``Pacer``) and the pieces it is made of.

The scheduler and ``fetch_one`` ask the Pacer, by method, whether a request
may start, how long its host is paused, whether its host was given up, and
tell it how attempts and requests ended; nobody reads its fields. Its parts:

- ``RateLimiter`` spaces attempt starts at least 1/rate apart across the run:
  each start reserves the next free slot, so there are no bursts, even after
  an idle spell.
- ``HostSlots`` admits at most ``per_host`` requests per host (name and port)
  into flight and parks the rest, so requests for other hosts go ahead: a
  slow host holds back only its own requests.
- ``HostPauses`` remembers a ``Retry-After`` from a 429 or 503 and holds back
  further attempts to that host (not the run) until then.
- ``HostErrors`` gives a host up after ``--max-host-errors`` connection-level
  failures in a row.

The arithmetic takes the clock as a parameter and is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence

from yarl import URL

from afetch.config import Config
from afetch.errors import ErrorKind
from afetch.models import FetchResult, FetchSpec
from afetch.retry import parse_retry_after

Clock = Callable[[], float]
HostKey = tuple[str, int | None]
_PAUSING_STATUSES = frozenset({429, 503})


def host_key(url: URL) -> HostKey:
    return (url.host or "", url.port)


def host_home(config: Config, spec: FetchSpec, workers: Sequence[int]) -> int | None:
    """The worker process that owns the request's host, when per-host policy needs one
    owner (caps, pauses and error counts stay exact); None: any worker will do."""
    if not (config.per_host or config.max_host_errors or config.host_interval):
        return None
    host, port = host_key(spec.target)
    return workers[zlib.crc32(f"{host}:{port}".encode()) % len(workers)]


class RateLimiter:
    """At most ``per_second`` starts per second, evenly spaced."""

    def __init__(self, per_second: float, clock: Clock = time.monotonic) -> None:
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next = float("-inf")

    def reserve(self) -> float:
        """Take the next start slot; return how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class HostIntervals:
    """``--host-interval``: starts to one host at least ``interval`` apart.

    Each start reserves its host's next slot (no bursts after an idle spell,
    as for ``--rate``). Only hosts with a slot still ahead are remembered, so
    the table stays as small as the hosts being paced right now.
    """

    def __init__(self, interval: float, clock: Clock = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next: dict[HostKey, float] = {}

    def reserve(self, host: HostKey) -> float:
        """Take the host's next start slot; how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next.get(host, now))
        self._next[host] = slot + self._interval
        if len(self._next) > 1024:  # forget hosts whose slots have passed
            self._next = {key: at for key, at in self._next.items() if at > now}
        return slot - now


class HostPauses:
    """Per-host "not before" times from Retry-After."""

    def __init__(self, max_wait: float, clock: Clock = time.monotonic) -> None:
        self._max_wait = max_wait
        self._clock = clock
        #: Host → the clock time before which it is left alone.
        #: Host → the clock time before which it is left alone (the Pacer looks at it).
        self.until: dict[HostKey, float] = {}

    def observe(self, host: HostKey, status: int | None, retry_after: str | None) -> None:
        """A 429/503 with an acceptable Retry-After pauses its host."""
        if status not in _PAUSING_STATUSES:
            return
        seconds = parse_retry_after(retry_after, time.time())
        if seconds is None or seconds > self._max_wait:
            return
        until = self._clock() + seconds
        if until > self.until.get(host, 0.0):
            self.until[host] = until

    @property
    def any(self) -> bool:
        return bool(self.until)

    def remaining(self, host: HostKey) -> float:
        until = self.until.get(host)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self.until[host]  # keeps the table as small as the paused hosts
            return 0.0
        return left


class Pacer:
    """The run's per-host authority: admission, pauses, error budget, and the rate."""

    def __init__(self, config: Config, clock: Clock = time.monotonic) -> None:
        self._rate = RateLimiter(config.rate, clock) if config.rate else None
        self._spacing = HostIntervals(config.host_interval, clock) if config.host_interval else None
        self._pauses = HostPauses(config.retry_max_wait, clock)
        self._errors = HostErrors(config.max_host_errors)
        self._slots = HostSlots(config.per_host)
        # Asked once per request: without the policy, each answer is one test, no call.
        self._per_host = bool(config.per_host)
        self._budget = config.max_host_errors
        self._paused = self._pauses.until  # the paused hosts, shared: empty, no pause

    # -- requests (the scheduler) --------------------------------------------

    def admit(self, spec: FetchSpec) -> bool:
        """True if the request may start now; False: parked until its host has room."""
        return not self._per_host or self._slots.admit(spec)

    def release(self, spec: FetchSpec) -> FetchSpec | None:
        """The request finished: the next parked one of its host, now admitted."""
        return self._slots.release(spec) if self._per_host else None

    def pause_before(self, spec: FetchSpec) -> float:
        """Seconds its host asked to be left alone (``Retry-After``); 0: go."""
        if not self._paused:
            return 0.0
        return self._pauses.remaining(host_key(spec.target))

    def given_up(self, spec: FetchSpec) -> str | None:
        """Why the request is not attempted (its host used up --max-host-errors), or None."""
        limit = self._budget
        if limit is None or not self._errors.given_up(host_key(spec.target)):
            return None
        host, port = host_key(spec.target)
        where = host if port is None else f"{host}:{port}"
        return f"not attempted: {limit} connection failures in a row on {where} (--max-host-errors)"

    def settled(self, spec: FetchSpec, result: FetchResult) -> None:
        """A request's result counts against (or resets) its host's error budget."""
        if self._budget is not None:
            self._errors.observe(host_key(spec.target), result)

    # -- attempts (fetch_one) --------------------------------------------------

    @property
    def active(self) -> bool:
        """False when nothing paces the run: attempts skip ``before_attempt``."""
        return self._rate is not None or self._spacing is not None or self._pauses.any

    async def before_attempt(self, url: URL) -> None:
        host = host_key(url)
        # A loop, not one sleep: another 429 may extend the pause while we wait.
        while (left := self._pauses.remaining(host)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)
        if self._spacing is not None and (wait := self._spacing.reserve(host)) > 0:
            await asyncio.sleep(wait)
        if self._rate is not None:
            await self._rate.wait()

    def after_attempt(self, url: URL, status: int | None, retry_after: str | None) -> None:
        self._pauses.observe(host_key(url), status, retry_after)


class HostErrors:
    """``--max-host-errors N``: after N connection-level failures in a row, give a host up.

    Counts results, not attempts (a request's retries are one failure), and
    any response from the host starts the count again. Once given up, the
    host's remaining requests are not attempted: they get ``skipped``
    records, so a dead host costs N timeouts, not one per URL.
    """

    _CONNECTION_LEVEL = frozenset(
        (ErrorKind.DNS, ErrorKind.CONNECT, ErrorKind.TLS, ErrorKind.TIMEOUT)
    )

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._in_a_row: dict[HostKey, int] = {}

    def given_up(self, host: HostKey) -> bool:
        return self.limit is not None and self._in_a_row.get(host, 0) >= self.limit

    def observe(self, host: HostKey, result: FetchResult) -> None:
        if self.limit is None:
            return
        if result.error is not None and result.error.kind in self._CONNECTION_LEVEL:
            self._in_a_row[host] = self._in_a_row.get(host, 0) + 1
        elif result.status is not None:
            self._in_a_row.pop(host, None)


class HostSlots:
    """Per-host admission: at most ``limit`` in flight per host, the rest parked in order."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._busy: dict[HostKey, int] = {}
        self._parked: dict[HostKey, deque[FetchSpec]] = {}

    def admit(self, spec: FetchSpec) -> bool:
        """True if the spec may start now (its slot is taken); False if it was parked."""
        if not self._limit:
            return True
        host = host_key(spec.target)
        busy = self._busy.get(host, 0)
        if busy < self._limit:
            self._busy[host] = busy + 1
            return True
        self._parked.setdefault(host, deque()).append(spec)
        return False

    def release(self, spec: FetchSpec) -> FetchSpec | None:
        """The spec finished: hand its slot to the next parked spec of that host, if any."""
        if not self._limit:
            return None
        host = host_key(spec.target)
        parked = self._parked.get(host)
        if parked:
            following = parked.popleft()
            if not parked:
                del self._parked[host]
            return following
        busy = self._busy[host] - 1
        if busy:
            self._busy[host] = busy
        else:
            del self._busy[host]
        return None

    def parked(self) -> list[FetchSpec]:
        return [spec for queue in self._parked.values() for spec in queue]
