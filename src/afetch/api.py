"""The library API: ``stream`` and ``fetch_all`` over the same engine the CLI uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from typing import Any

from afetch.config import Config
from afetch.engine import Engine
from afetch.inputs import RequestParser
from afetch.models import FetchResult, FetchSpec

Request = str | FetchSpec


def stream(
    requests: Iterable[Request] | AsyncIterable[Request], options: Config | None = None
) -> AsyncGenerator[FetchResult, None]:
    """One FetchResult per request as each finishes (completion order).

    Strings are URLs (``--default-scheme`` applies to scheme-less ones) and are
    numbered in the order given; a string that is not a fetchable URL yields an
    ``invalid_input`` result rather than an exception. The engine's own
    generator is returned, unwrapped, so closing it (``contextlib.aclosing``)
    closes the run's connections at once.
    """
    config = options or Config()
    return Engine(config).results(_specs(requests, RequestParser(config)))


async def fetch_all(urls: Iterable[Request], **options: Any) -> list[FetchResult]:
    """Fetch every URL; results in input order, failures as results, never raised."""
    results = [result async for result in stream(urls, Config(**options))]
    results.sort(key=lambda result: result.index)
    return results


async def _specs(
    requests: Iterable[Request] | AsyncIterable[Request], parser: RequestParser
) -> AsyncIterator[FetchSpec | FetchResult]:
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            if (item := _one(request, parser)) is not None:
                yield item
    else:
        for request in requests:
            if (item := _one(request, parser)) is not None:
                yield item


def _one(request: Request, parser: RequestParser) -> FetchSpec | FetchResult | None:
    if isinstance(request, FetchSpec):
        return request
    return parser.parse_argument(request)
