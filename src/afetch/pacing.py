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
import logging
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from yarl import URL

from afetch.config import Config
from afetch.errors import ErrorKind
from afetch.models import FetchResult, FetchSpec
from afetch.ratelimit import Budget
from afetch.retry import parse_retry_after

log = logging.getLogger("afetch")
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
        self.interval = interval
        self._clock = clock
        self._next: dict[HostKey, float] = {}

    def reserve(self, host: HostKey, interval: float | None = None) -> float:
        """Take the host's next start slot (``interval`` after it: the host's own pace,
        else ``--host-interval``); how long to wait for it."""
        now = self._clock()
        slot = max(now, self._next.get(host, now))
        self._next[host] = slot + (self.interval if interval is None else interval)
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


class _Slowed:
    """A host the server slowed down: its cap and interval now, and how far it came."""

    __slots__ = ("cap", "ceiling", "interval", "since", "successes")

    def __init__(self, cap: int, ceiling: int, interval: float, since: float) -> None:
        self.cap, self.ceiling, self.interval, self.since = cap, ceiling, interval, since
        self.successes = 0


class HostThrottle:
    """AIMD per host: a 429 or 503 halves the host's concurrency; at one at a time,
    it doubles the gap between its starts instead (from ``FIRST_GAP`` up to
    ``LONGEST_GAP``). After as many successes in a row as its cap (at least
    ``RUN``) it takes a step back: half the gap, or once there is none, one
    more slot, until it is where it started and is forgotten.

    An answer to an attempt that started before the last slow-down was sent
    under the old pace: it does not halve again (one step per round trip, as
    TCP does), so a burst of 429s from the requests in flight is one step.
    """

    FIRST_GAP = 0.1
    LONGEST_GAP = 1.0
    RUN = 4
    KEPT = 1024

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.hosts: dict[HostKey, _Slowed] = {}
        self.dropped: HostKey | None = None  # the host let go to keep the table bounded

    def interval(self, host: HostKey) -> float:
        slowed = self.hosts.get(host)
        return 0.0 if slowed is None else slowed.interval

    def throttled(self, host: HostKey, busy: int, started: float) -> _Slowed | None:
        """A 429/503 on an attempt that started at ``started`` while ``busy`` requests
        to the host were in flight; the host's new pace, or None when it stays."""
        now = self._clock()
        slowed = self.hosts.get(host)
        if slowed is None:
            busy = max(busy, 1)
            slowed = _Slowed(max(1, busy // 2), busy, 0.0 if busy > 1 else self.FIRST_GAP, now)
            if len(self.hosts) >= self.KEPT:  # bounded: the longest-slowed host is let go
                self.dropped = next(iter(self.hosts))
                del self.hosts[self.dropped]
            self.hosts[host] = slowed
            return slowed
        if started < slowed.since:
            return None
        if slowed.cap > 1:
            slowed.cap //= 2
        else:
            slowed.interval = min(self.LONGEST_GAP, max(slowed.interval * 2, self.FIRST_GAP))
        slowed.since, slowed.successes = now, 0
        return slowed

    def succeeded(self, host: HostKey) -> _Slowed | None:
        """An answer other than 429/503; the host's new pace when it recovers a step
        (cap 0 in the returned pace: back to full speed, forgotten)."""
        slowed = self.hosts.get(host)
        if slowed is None:
            return None
        slowed.successes += 1
        if slowed.successes < max(slowed.cap, self.RUN):
            return None
        slowed.successes = 0
        if slowed.interval:
            slowed.interval = slowed.interval / 2 if slowed.interval >= 2 * _NO_GAP else 0.0
        else:
            slowed.cap = min(slowed.ceiling, slowed.cap + 1)
        if slowed.cap >= slowed.ceiling and not slowed.interval:
            del self.hosts[host]
            slowed.cap = 0
        return slowed


#: A gap shorter than this is no gap.
_NO_GAP = 0.01


class HostBudgets:
    """Gaps between starts to hosts whose rate-limit headers say their budget is low
    (``afetch.ratelimit``): what is left, spread evenly over the rest of the window."""

    def __init__(self, longest: float) -> None:
        self._longest = longest
        self.gaps: dict[HostKey, float] = {}

    def observe(self, host: HostKey, budget: Budget) -> float | None:
        """The host's new gap (0: none) when it changed, else None."""
        gap = min(budget.interval(), self._longest) if budget.low else 0.0
        gap = gap if gap >= _NO_GAP else 0.0
        before = self.gaps.get(host, 0.0)
        if abs(gap - before) < max(_NO_GAP, before / 10):  # the same pace, within 10 %
            return None
        if gap:
            if host not in self.gaps and len(self.gaps) >= 1024:
                del self.gaps[next(iter(self.gaps))]
            self.gaps[host] = gap
        else:
            self.gaps.pop(host, None)
        return gap


class PacingNotes:
    """What pacing happened per host, for the summary: bounded to ``KEPT`` hosts."""

    KEPT = 100

    def __init__(self) -> None:
        #: host → [429s and 503s, lowest cap, longest gap, budget-paced starts gap]
        self.hosts: dict[str, list[Any]] = {}
        self.more = 0  # 429/503 answers from hosts beyond KEPT (only counted)

    def note(
        self,
        host: HostKey,
        *,
        status: int | None = None,
        cap: int | None = None,
        gap: float = 0.0,
        budget_gap: float = 0.0,
    ) -> None:
        statuses = {} if status is None else {status: 1}
        self.absorb({host_name(host): [statuses, cap, gap, budget_gap]})

    def lines(self, shown: int = 5) -> list[str]:
        """``api.example: 429 x3, slowed to 1 at a time, 2.0 s apart``, busiest first."""

        def weight(item: tuple[str, list[Any]]) -> tuple[int, str]:
            return (-sum(item[1][0].values()), item[0])

        out = []
        for name, (statuses, cap, gap, budget_gap) in sorted(self.hosts.items(), key=weight):
            parts = [f"{status} x{count}" for status, count in sorted(statuses.items())]
            if cap is not None:
                parts.append(f"slowed to {cap} at a time" + (f", {gap:.1f} s apart" if gap else ""))
            if budget_gap:
                parts.append(f"paced {budget_gap:.1f} s apart by its rate-limit headers")
            out.append(f"{name}: {', '.join(parts)}")
        hidden = max(0, len(out) - shown)
        tail = f"and {hidden} more hosts" if hidden else ""
        if self.more:
            tail += f"{', ' if tail else ''}{self.more} 429/503 answers from hosts not listed"
        return out[:shown] + ([tail] if tail else [])

    def absorb(self, hosts: dict[str, list[Any]]) -> None:
        """Notes merged in: this process's own (``note``) or a worker process's
        (``--workers``: each worker paces its own hosts)."""
        for name, (statuses, cap, gap, budget_gap) in hosts.items():
            entry = self.hosts.get(name)
            if entry is None:
                if len(self.hosts) >= self.KEPT:
                    self.more += sum(statuses.values())
                    continue
                entry = self.hosts[name] = [{}, None, 0.0, 0.0]
            for status, count in statuses.items():
                entry[0][int(status)] = entry[0].get(int(status), 0) + count
            if cap is not None and (entry[1] is None or cap < entry[1]):
                entry[1] = cap
            entry[2], entry[3] = max(entry[2], gap), max(entry[3], budget_gap)


def host_name(host: HostKey) -> str:
    name, port = host
    return name if port in (None, 80, 443) else f"{name}:{port}"


class Pacer:
    """The run's per-host authority: admission, pauses, error budget, and the rate."""

    def __init__(self, config: Config, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._rate = RateLimiter(config.rate, clock) if config.rate else None
        self._spacing = HostIntervals(config.host_interval or 0.0, clock)
        self._pauses = HostPauses(config.retry_max_wait, clock)
        self._errors = HostErrors(config.max_host_errors)
        self._slots = HostSlots(config.per_host)
        self._throttle = HostThrottle(clock)
        self._budgets = HostBudgets(config.retry_max_wait)
        self.notes = PacingNotes()
        #: The scheduler's requests being fetched now to a host (what a first 429 halves).
        self.running: Callable[[HostKey], list[FetchSpec]] | None = None
        self._log = config.log_pacing
        self._adaptive = config.adaptive
        self._concurrency = config.concurrency
        self._budget = config.max_host_errors
        self._paused = self._pauses.until  # the paused hosts, shared: empty, no pause
        self._slowed = self._throttle.hosts  # shared: empty, nothing slowed

    # -- requests (the scheduler) --------------------------------------------

    def admit(self, spec: FetchSpec) -> bool:
        """True if the request may start now; False: parked until its host has room."""
        return self._slots.admit(spec)

    def release(self, spec: FetchSpec) -> list[FetchSpec]:
        """The request finished: the next parked ones of its host, now admitted."""
        return self._slots.release(spec)

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
        """A request's result counts against (or resets) its host's error budget, and an
        answer other than 429/503 brings a slowed host a step back."""
        if self._budget is not None:
            self._errors.observe(host_key(spec.target), result)
        if self._slowed and result.status is not None and result.status not in _PAUSING_STATUSES:
            host = host_key(spec.target)
            if (pace := self._throttle.succeeded(host)) is not None:
                self._set_cap(host, pace.cap or None)
                self._say(host, "back to full speed" if not pace.cap else _pace(pace))

    # -- attempts (fetch_one) --------------------------------------------------

    @property
    def active(self) -> bool:
        """False when nothing paces the run: attempts skip ``before_attempt``."""
        return bool(
            self._rate is not None
            or self._spacing.interval
            or self._paused
            or self._slowed
            or self._budgets.gaps
        )

    async def before_attempt(self, url: URL) -> None:
        host = host_key(url)
        # A loop, not one sleep: another 429 may extend the pause while we wait.
        while (left := self._pauses.remaining(host)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)
        gap = max(
            self._spacing.interval,
            self._throttle.interval(host) if self._slowed else 0.0,
            self._budgets.gaps.get(host, 0.0),
        )
        if gap and (wait := self._spacing.reserve(host, gap)) > 0:
            await asyncio.sleep(wait)
        if self._rate is not None:
            await self._rate.wait()

    def after_attempt(
        self,
        url: URL,
        status: int | None,
        retry_after: str | None,
        budget: Budget | None = None,
        started: float = float("inf"),
    ) -> None:
        """An attempt's answer: a 429/503 pauses (``Retry-After``) and slows its host; a
        rate-limit budget running low spaces its starts."""
        host = host_key(url)
        if status in _PAUSING_STATUSES:
            self._pauses.observe(host, status, retry_after)
            self.notes.note(host, status=status)
            if self._adaptive and host not in self._slowed and self.running is not None:
                self._slots.track(host, self.running(host))  # counted from now on
            busy = min(self._slots.busy(host), self._concurrency)  # admitted, not all started
            if self._adaptive and (pace := self._throttle.throttled(host, busy, started)):
                if (dropped := self._throttle.dropped) is not None:
                    self._set_cap(dropped, None)  # back to full speed: no longer watched
                    self._throttle.dropped = None
                self._set_cap(host, pace.cap)
                self.notes.note(host, cap=pace.cap, gap=pace.interval)
                self._say(host, f"{status}, slowed to {_pace(pace)}")
        if budget is not None and self._adaptive:
            if budget.remaining == 0:  # spent: no start before the window resets, then none
                self._pauses.observe(host, 429, str(int(budget.reset + 0.999)))
                budget = replace(budget, remaining=budget.limit or 1_000_000)
            if (gap := self._budgets.observe(host, budget)) is not None:
                self.notes.note(host, budget_gap=gap)
                left = f"{budget.remaining} left in the next {budget.reset:.0f} s"
                self._say(host, f"{left}: {gap:.2f} s apart" if gap else f"{left}: no gap")

    def _set_cap(self, host: HostKey, cap: int | None) -> None:
        if cap is None:
            self._slots.caps.pop(host, None)
        else:
            self._slots.caps[host] = cap

    def _say(self, host: HostKey, change: str) -> None:
        """--verbose: each change of a host's pace, as it happens."""
        if self._log:
            log.warning("afetch: pacing %s: %s", host_name(host), change)


def _pace(pace: _Slowed) -> str:
    gap = f", {pace.interval:.2f} s apart" if pace.interval else ""
    return f"{pace.cap} at a time{gap}"


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
    """Per-host admission: at most a host's cap in flight, the rest parked in order.

    The cap is ``--per-host`` (0: none), lowered for a host the server slowed
    down (``caps``, from HostThrottle). With ``--per-host`` every host's
    requests in flight are counted; without it only a slowed host's are, from
    the moment it is slowed (``track``), so a run nobody slows pays one test
    per request. Tables hold hosts with requests in flight or parked only.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit or sys.maxsize
        self._every = bool(limit)  # --per-host: every host is counted
        self.caps: dict[HostKey, int] = {}  # hosts slowed below the limit
        self._busy: dict[HostKey, int] = {}
        self._counted: set[int] = set()  # without --per-host: indices counted in _busy
        self._parked: dict[HostKey, deque[FetchSpec]] = {}

    def busy(self, host: HostKey) -> int:
        return self._busy.get(host, 0)

    def track(self, host: HostKey, running: list[FetchSpec]) -> None:
        """Count a host's requests from now on, starting with those ``running``."""
        if self._every:
            return
        fresh = [spec.index for spec in running if spec.index not in self._counted]
        self._counted.update(fresh)
        if fresh:
            self._busy[host] = self._busy.get(host, 0) + len(fresh)

    def admit(self, spec: FetchSpec) -> bool:
        """True if the spec may start now (its slot is taken); False if it was parked."""
        if not self._every and not self.caps:
            return True
        host = host_key(spec.target)
        cap = self.caps.get(host, self._limit) if self.caps else self._limit
        if not self._every:
            if cap == self._limit and host not in self._busy:
                return True  # not slowed, nothing of it counted
            self._counted.add(spec.index)
        busy = self._busy.get(host, 0)
        if busy < cap:
            self._busy[host] = busy + 1
            return True
        self._parked.setdefault(host, deque()).append(spec)
        return False

    def release(self, spec: FetchSpec) -> list[FetchSpec]:
        """The spec finished: its slot, and any the host's cap now allows, go to the
        host's next parked specs (admitted, in order)."""
        if not self._every:
            if not self._counted or spec.index not in self._counted:
                return []
            self._counted.discard(spec.index)
        host = host_key(spec.target)
        busy = self._busy[host] - 1
        parked = self._parked.get(host)
        admitted = []
        if parked:
            cap = self.caps.get(host, self._limit)
            while parked and busy < cap:
                following = parked.popleft()
                admitted.append(following)
                if not self._every:
                    self._counted.add(following.index)
                busy += 1
            if not parked:
                del self._parked[host]
        if busy:
            self._busy[host] = busy
        else:
            del self._busy[host]
        return admitted

    def parked(self) -> list[FetchSpec]:
        return [spec for queue in self._parked.values() for spec in queue]
