"""The contract every scheduler keeps, and the parts of it they share.

A scheduler turns a stream of requests into one result per request read:
the engine does it in this process, the process pool over worker
processes. Both keep the same guarantees with the same parts: the
``Ledger`` of requests read but not finished (their ``cancelled`` records,
the count ``--resume`` reports), the ``ReorderWindow`` of ``--ordered``,
and the run's limits (``deadline``, ``max_failures``), which stop it the
same way ``stop()`` does and say why.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from afetch.config import Config
from afetch.models import FetchResult, FetchSpec, cancelled, internal_error
from afetch.pacing import PacingNotes

Requests = AsyncIterable[FetchSpec | FetchResult] | Iterable[FetchSpec | FetchResult]


class StopReason(Enum):
    """Why a run ended before its input did."""

    STOPPED = "stopped"  # the caller's stop(): a signal, a reader that left
    DEADLINE = "deadline"
    MAX_FAILURES = "max_failures"


@dataclass(slots=True)
class Ticket:
    """A request taken from the input: enough to write its ``cancelled`` record."""

    spec: FetchSpec
    seq: int  # position among everything read, for --ordered
    started: float | None = None  # None while it waits for a fetcher, its host or a process
    attempts: int = 0
    holder: int | None = None  # the worker process it was sent to (process pool only)

    def count_attempt(self) -> None:
        self.attempts += 1

    def cancelled(self, now: float) -> FetchResult:
        elapsed = 0.0 if self.started is None else round((now - self.started) * 1000, 3)
        return cancelled(self.spec, elapsed, self.attempts)


class Ledger:
    """Requests read from the input and not yet delivered, by index."""

    def __init__(self) -> None:
        self.open: dict[int, Ticket] = {}
        self._seq = 0

    def take_seq(self) -> int:
        """The next position in input order (a pre-made result takes one too)."""
        seq, self._seq = self._seq, self._seq + 1
        return seq

    def admit(self, spec: FetchSpec) -> Ticket:
        if spec.index in self.open:
            raise ValueError(f"two requests have index {spec.index}: indices must be unique")
        ticket = self.open[spec.index] = Ticket(spec, self.take_seq())
        return ticket

    def settle(self, index: int) -> Ticket:
        return self.open.pop(index)

    def __len__(self) -> int:
        return len(self.open)

    def close(self) -> list[Ticket]:
        """What is left when the run ends, in index order; the ledger is empty after."""
        left = sorted(self.open.values(), key=lambda ticket: ticket.spec.index)
        self.open.clear()
        return left


class ReorderWindow:
    """``--ordered``: a result waits here until every request read before it has gone.

    Without ordering each result goes at once. The caller bounds how far
    ahead of the oldest unfinished request the input may be read, so what
    waits here is bounded too.
    """

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self._held: dict[int, FetchResult] = {}
        self._next = 0

    def push(self, seq: int, result: FetchResult) -> list[FetchResult]:
        """The results that may go now, in order (this one, and those it unblocked)."""
        if not self.ordered:
            return [result]
        self._held[seq] = result
        ready = []
        while self._next in self._held:
            ready.append(self._held.pop(self._next))
            self._next += 1
        return ready

    def rest(self) -> list[FetchResult]:
        """At the end of a stopped run: what still waits for an earlier request, in order."""
        left = [self._held[seq] for seq in sorted(self._held)]
        self._held.clear()
        return left


class RunLimits(NamedTuple):  # not a dataclass: that costs 0.5 ms of start-up
    """How a run is steered, whichever scheduler runs it."""

    ordered: bool = False  # results in input order
    emit_cancelled: bool = True  # False (--resume): an interrupted request leaves no record
    deadline: float | None = None  # seconds for the whole run
    max_failures: int | None = None  # stop after this many results not ok
    grow: bool = False  # --workers auto: take on worker processes while the loop is saturated


NO_LIMITS = RunLimits()


class Scheduler(ABC):
    """Runs one stream of requests; ``stop()`` ends it early and cleanly.

    ``results`` yields exactly one result per request read (unless
    ``emit_cancelled`` is off: then an interrupted request leaves none) and
    raises, after the results already finished, what made the input fail.
    """

    def __init__(self, config: Config, limits: RunLimits = NO_LIMITS) -> None:
        self.config = config
        self.emit_cancelled = limits.emit_cancelled
        self.deadline = limits.deadline
        self.max_failures = limits.max_failures
        self.ledger = Ledger()
        self.window = ReorderWindow(limits.ordered)
        self.stop_reason: StopReason | None = None
        #: Requests read but not finished when the run stopped (with or without records).
        self.unfinished = 0
        #: Worker processes that died during the run (the OOM killer's SIGKILL...).
        self.deaths = 0
        self._not_ok = 0
        self._timer: asyncio.TimerHandle | None = None
        #: With --recheck: the specs of requests that ended not ok, by index.
        self.keep_failed: dict[int, FetchSpec] | None = None
        #: How hosts were paced (429s, slow-downs, rate-limit headers), for the summary.
        self.pacing = PacingNotes()

    @property
    def stopping(self) -> bool:
        return self.stop_reason is not None

    @property
    def running(self) -> int:
        """Requests being fetched now (not those read and waiting): at most ``-c``."""
        return 0

    def stop(self, reason: StopReason = StopReason.STOPPED) -> None:
        """Start no more requests; unfinished ones end as ``cancelled`` records."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self._halt()

    @abstractmethod
    def _halt(self) -> None:
        """Interrupt the work under way (called once, by ``stop``)."""

    @abstractmethod
    def results(self, requests: Requests) -> AsyncGenerator[FetchResult, None]:
        """One result per request read: completion order, or input order with ``ordered``."""

    def _start_clock(self) -> None:
        if self.deadline is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.deadline, self.stop, StopReason.DEADLINE)

    def _wind_up(self, completed: bool) -> None:
        """At the end of ``results``: a consumer that left early stops the run."""
        if self._timer is not None:
            self._timer.cancel()
        if completed:
            self._halt()  # nothing is left running; the run was not stopped
        else:
            self.stop()

    def _settled(self, spec: FetchSpec, result: FetchResult) -> None:
        """A fetched request's result: with --recheck, a failure's spec is kept."""
        if self.keep_failed is not None and not result.ok:
            self.keep_failed[spec.index] = spec

    def _passed(self, result: FetchResult) -> None:
        """Count a delivered result against ``max_failures``."""
        if not (result.ok or result.warn) and self.max_failures is not None:
            self._not_ok += 1
            if self._not_ok >= self.max_failures:
                self.stop(StopReason.MAX_FAILURES)

    def _leftovers(self, crash: Exception | None = None) -> list[FetchResult]:
        """Records for what the run read and did not finish (counted as unfinished):
        ``cancelled`` ones, or ``internal`` ones saying what went wrong (``crash``)."""
        left = self.ledger.close()
        self.unfinished += len(left)
        if crash is not None:
            return [internal_error(ticket.spec, crash, ticket.attempts) for ticket in left]
        if not self.emit_cancelled:
            return []
        now = time.perf_counter()
        return [ticket.cancelled(now) for ticket in left]
