"""The library API: ``stream`` and ``fetch_all`` over the same engine the CLI uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import orjson

from afetch.config import Config
from afetch.inputs import RequestParser
from afetch.models import FetchResult, FetchSpec
from afetch.run.engine import Engine

Request = str | FetchSpec | Mapping[str, Any]


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
