"""``--recheck N``: requests that ended not ok are tried again after the main pass.

Records of ok requests stream as usual; only those of failed requests are
held back, so a run with few failures keeps its memory and its pace. Each
round waits ``delay`` (a flaky dependency gets time to recover), then runs
the failed requests again through a fresh scheduler under the same limits.
One that passes becomes ``ok`` with ``flaky: true`` and ``attempts``
counting every try; one that fails every time keeps its last failure. A
stop (Ctrl-C, the deadline) ends the rounds: what is held is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace

from afetch.errors import ErrorKind
from afetch.models import FetchResult, FetchSpec
from afetch.run.scheduler import Requests, Scheduler, StopReason


class Rechecks:
    """The rounds of one run; ``schedulers`` grows by one per round."""

    def __init__(
        self,
        first: Scheduler,
        make: Callable[[float | None], Scheduler],
        rounds: int,
        delay: float,
    ) -> None:
        self.schedulers = [first]
        self._make = make  # a scheduler for a round, given the deadline left
        self._rounds = rounds
        self._delay = delay
        self._stopped = asyncio.Event()
        self._started = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()
        self.schedulers[-1].stop()

    async def results(self, requests: Requests) -> AsyncGenerator[FetchResult, None]:
        first = self.schedulers[0]
        specs = first.keep_failed = {}
        held: dict[int, FetchResult] = {}
        async for result in first.results(requests):
            if result.ok or result.index not in specs:
                yield result
            else:
                held[result.index] = result
        for _ in range(self._rounds):
            if not held or self._stopped.is_set() or not await self._wait():
                break
            async for result in self._round([specs[i] for i in sorted(held)], held, specs):
                yield result
        for index in sorted(held):
            yield held[index]

    async def _round(
        self, todo: list[FetchSpec], held: dict[int, FetchResult], specs: dict[int, FetchSpec]
    ) -> AsyncGenerator[FetchResult, None]:
        scheduler = self._make(self._deadline_left())
        self.schedulers.append(scheduler)
        scheduler.keep_failed = specs
        async for result in scheduler.results(todo):
            before = held[result.index]
            if result.error is not None and result.error.kind is ErrorKind.CANCELLED:
                continue  # interrupted: the last real failure stands
            # A new result (results never change once made): every try counted, and
            # written from its fields, not from a worker's line.
            result = replace(
                result, attempts=result.attempts + before.attempts, line=None, flaky=result.ok
            )
            if result.ok:
                del held[result.index]
                yield result
            else:
                held[result.index] = result

    async def _wait(self) -> bool:
        """The delay before a round; False when a stop or the deadline came first."""
        left = self._deadline_left()
        delay = self._delay if left is None else min(self._delay, max(left, 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)
        if left is not None and left <= self._delay:
            self.schedulers[0].stop(StopReason.DEADLINE)
        return not self._stopped.is_set() and self.schedulers[0].stop_reason is None

    def _deadline_left(self) -> float | None:
        deadline = self.schedulers[0].deadline
        if deadline is None:
            return None
        return deadline - (time.monotonic() - self._started)
