"""The library API: ``stream`` and ``fetch_all`` over the same engine the CLI uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any, Literal

import orjson

from afetch.config import Config
from afetch.inputs import ParsedRequests, RequestParser
from afetch.models import FetchResult, FetchSpec
from afetch.pacing import PacingNotes
from afetch.run.engine import Engine
from afetch.run.recheck import Rechecks
from afetch.run.scheduler import Requests, RunLimits, Scheduler, StopReason

Request = str | FetchSpec | Mapping[str, Any]
_RUN_OPTIONS = (
    "ordered",
    "emit_cancelled",
    "workers",
    "deadline",
    "max_failures",
    "recheck",
    "recheck_delay",
)


class Stream:
    """The results of one run, as an async iterator, with the run's controls.

    Iterating it iterates the scheduler's own generator (no layer per
    result; with ``recheck``, the rounds' generator); ``aclose()`` (or
    ``contextlib.aclosing``) closes the run's connections and worker
    processes at once. ``stop()`` ends the run early: unfinished requests
    get ``cancelled`` records (unless ``emit_cancelled=False``). After the
    end, ``stop_reason``, ``unfinished`` and ``deaths`` say how it ended.
    """

    def __init__(self, scheduler: Scheduler, requests: Requests, rechecks: Rechecks | None) -> None:
        self._rechecks = rechecks
        self._schedulers = [scheduler] if rechecks is None else rechecks.schedulers
        if rechecks is None:
            self._results = scheduler.results(requests)
        else:
            self._results = rechecks.results(requests)

    def __aiter__(self) -> AsyncGenerator[FetchResult, None]:
        return self._results

    async def __anext__(self) -> FetchResult:
        return await anext(self._results)

    async def aclose(self) -> None:
        await self._results.aclose()

    def pacing(self) -> list[str]:
        """How hosts were paced (429s and 503s, slow-downs, rate-limit headers), busiest
        first: lines for the summary."""
        notes = PacingNotes()
        for scheduler in self._schedulers:
            notes.absorb(scheduler.pacing.hosts)
            notes.more += scheduler.pacing.more
        return notes.lines()

    def stop(self) -> None:
        if self._rechecks is not None:
            self._rechecks.stop()
        else:
            self._schedulers[-1].stop()

    @property
    def stop_reason(self) -> StopReason | None:
        return next((s.stop_reason for s in self._schedulers if s.stop_reason), None)

    @property
    def unfinished(self) -> int:
        """Requests read but not finished when the run stopped."""
        return sum(scheduler.unfinished for scheduler in self._schedulers)

    @property
    def in_flight(self) -> int:
        """Requests read and not finished yet (the progress bar's count)."""
        return len(self._schedulers[-1].ledger)

    @property
    def running(self) -> int:
        """Requests being fetched now: at most the concurrency."""
        return self._schedulers[-1].running

    @property
    def deaths(self) -> int:
        """Worker processes that died during the run (``workers`` > 1)."""
        return sum(scheduler.deaths for scheduler in self._schedulers)


def stream(
    requests: Iterable[Request] | AsyncIterable[Request] | ParsedRequests,
    options: Config | None = None,
    *,
    ordered: bool = False,
    emit_cancelled: bool = True,
    workers: int | Literal["auto"] = 1,
    deadline: float | None = None,
    max_failures: int | None = None,
    recheck: int = 0,
    recheck_delay: float = 5.0,
) -> Stream:
    """One FetchResult per request as each finishes (completion order).

    Strings are URLs (``--default-scheme`` applies to scheme-less ones) and are
    numbered in the order given; mappings are JSON request objects (``{"url":
    ...}``); a request that is not fetchable yields an ``invalid_input`` result
    rather than an exception. ``ordered`` yields in input order; ``workers``
    runs the fetching in that many processes (``"auto"``: one, taking on more
    while its loop is CPU-bound, as the CLI does by default); ``deadline`` (seconds) and
    ``max_failures`` (results not ok) stop the run as ``stop()`` does, and
    ``stop_reason`` says which. ``recheck`` tries requests that ended not ok
    again, up to that many times, ``recheck_delay`` seconds after the main
    pass (their results come after it). What made the input fail (an
    iterable that raises, two FetchSpecs with one index) is raised after the
    results that finished.
    """
    config = options or Config()
    limits = RunLimits(ordered, emit_cancelled, deadline, max_failures)

    def make(limits: RunLimits) -> Scheduler:
        if workers == "auto":
            return Engine(config, limits._replace(grow=True))
        if workers > 1:
            from afetch.run.processes import WorkerPool  # subprocesses, pickle: only if asked

            return WorkerPool(config, workers, limits)
        return Engine(config, limits)

    scheduler = make(limits)
    rechecks = None
    if recheck > 0:
        rechecks = Rechecks(
            scheduler,
            lambda left: make(limits._replace(deadline=left, max_failures=None)),
            recheck,
            recheck_delay,
        )
    if isinstance(requests, ParsedRequests):  # the CLI's input stage: parsed and numbered
        return Stream(scheduler, requests.items, rechecks)
    return Stream(scheduler, _specs(requests, RequestParser(config)), rechecks)


async def fetch_all(urls: Iterable[Request], **options: Any) -> list[FetchResult]:
    """Fetch every URL; results in input order, failures as results, never raised.

    ``options`` are Config's fields and stream's keywords (``workers``,
    ``deadline``, ...).
    """
    run = {key: options.pop(key) for key in _RUN_OPTIONS if key in options}
    results = [result async for result in stream(urls, Config(**options), **run)]
    results.sort(key=lambda result: result.index)
    return results


async def _specs(
    requests: Iterable[Request] | AsyncIterable[Request], parser: RequestParser
) -> AsyncIterator[FetchSpec | FetchResult]:
    given: set[int] = set()  # indices of the caller's own FetchSpecs: each once
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            if (item := _one(request, parser, given)) is not None:
                yield item
    else:
        for request in requests:
            if (item := _one(request, parser, given)) is not None:
                yield item


def _one(
    request: Request | Mapping[str, Any], parser: RequestParser, given: set[int]
) -> FetchSpec | FetchResult | None:
    """A URL string, a JSON-line-shaped mapping ({"url": ...}) or a FetchSpec."""
    if isinstance(request, FetchSpec):
        if request.index in given:
            raise ValueError(f"two requests have index {request.index}: indices must be unique")
        given.add(request.index)
        return request
    if isinstance(request, Mapping):
        try:
            text = orjson.dumps(dict(request)).decode()
        except TypeError as exc:
            raise TypeError(f"a request mapping must be JSON-serialisable: {exc}") from None
        return parser.parse_json(text)
    if not isinstance(request, str):
        raise TypeError(
            f"a request must be a URL, a mapping or a FetchSpec, not {type(request).__name__}"
        )
    return parser.parse_argument(request)
