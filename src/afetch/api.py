"""The library API: ``stream`` and ``fetch_all`` over the same engine the CLI uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import orjson

from afetch.config import Config
from afetch.inputs import ParsedRequests, RequestParser
from afetch.models import FetchResult, FetchSpec
from afetch.run.engine import Engine
from afetch.run.scheduler import Requests, RunLimits, Scheduler, StopReason

Request = str | FetchSpec | Mapping[str, Any]
_RUN_OPTIONS = ("ordered", "emit_cancelled", "workers", "deadline", "max_failures")


class Stream:
    """The results of one run, as an async iterator, with the run's controls.

    Iterating it iterates the scheduler's own generator (no layer per
    result); ``aclose()`` (or ``contextlib.aclosing``) closes the run's
    connections and worker processes at once. ``stop()`` ends the run early:
    unfinished requests get ``cancelled`` records (unless
    ``emit_cancelled=False``). After the end, ``stop_reason``, ``unfinished``
    and ``deaths`` say how it ended.
    """

    def __init__(self, scheduler: Scheduler, requests: Requests) -> None:
        self.scheduler = scheduler
        self._results = scheduler.results(requests)

    def __aiter__(self) -> AsyncGenerator[FetchResult, None]:
        return self._results

    async def __anext__(self) -> FetchResult:
        return await anext(self._results)

    async def aclose(self) -> None:
        await self._results.aclose()

    def stop(self) -> None:
        self.scheduler.stop()

    @property
    def stop_reason(self) -> StopReason | None:
        return self.scheduler.stop_reason

    @property
    def unfinished(self) -> int:
        """Requests read but not finished when the run stopped."""
        return self.scheduler.unfinished

    @property
    def deaths(self) -> int:
        """Worker processes that died during the run (``workers`` > 1)."""
        return self.scheduler.deaths


def stream(
    requests: Iterable[Request] | AsyncIterable[Request] | ParsedRequests,
    options: Config | None = None,
    *,
    ordered: bool = False,
    emit_cancelled: bool = True,
    workers: int = 1,
    deadline: float | None = None,
    max_failures: int | None = None,
) -> Stream:
    """One FetchResult per request as each finishes (completion order).

    Strings are URLs (``--default-scheme`` applies to scheme-less ones) and are
    numbered in the order given; mappings are JSON request objects (``{"url":
    ...}``); a request that is not fetchable yields an ``invalid_input`` result
    rather than an exception. ``ordered`` yields in input order; ``workers``
    runs the fetching in that many processes; ``deadline`` (seconds) and
    ``max_failures`` (results not ok) stop the run as ``stop()`` does, and
    ``stop_reason`` says which. What made the input fail (an iterable that
    raises, two FetchSpecs with one index) is raised after the results that
    finished.
    """
    config = options or Config()
    limits = RunLimits(ordered, emit_cancelled, deadline, max_failures)
    scheduler: Scheduler
    if workers > 1:
        from afetch.run.processes import WorkerPool  # subprocesses and pickle: only when asked

        scheduler = WorkerPool(config, workers, limits)
    else:
        scheduler = Engine(config, limits)
    if isinstance(requests, ParsedRequests):  # the CLI's input stage: parsed and numbered
        return Stream(scheduler, requests.items)
    return Stream(scheduler, _specs(requests, RequestParser(config)))


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
