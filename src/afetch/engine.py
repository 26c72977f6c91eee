"""Specs → results as they finish, under bounded concurrency, in one ClientSession.

A feeder pulls requests from the input only when a worker is free, and a
fixed pool of ``concurrency`` workers fetches them: memory is bounded by the
concurrency, never by the length of the input (no task per line up front).
Results pass through a bounded queue, so a slow consumer slows fetching.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass

import aiohttp

from afetch import __version__, timing
from afetch.config import MAX_HEADER_COUNT, MAX_HEADER_LINE, Config
from afetch.fetch import Client, fetch_one
from afetch.models import FetchResult, FetchSpec, cancelled, internal_error
from afetch.proxy import Proxies

_DONE = object()


@dataclass(frozen=True, slots=True)
class _Crash:
    """Carries an exception from the supervisor to the consumer."""

    error: Exception


@dataclass(slots=True)
class _Ticket:
    """A request in flight: enough to write its ``cancelled`` record if the run stops."""

    spec: FetchSpec
    started: float
    attempts: int = 0

    def count_attempt(self) -> None:
        self.attempts += 1


def open_session(config: Config) -> aiohttp.ClientSession:
    """The run's one session, with every limit set by afetch's options."""
    connector = aiohttp.TCPConnector(
        # The engine owns concurrency: size the pool so it never waits on its own cap.
        limit=config.concurrency,
        limit_per_host=0,
        ttl_dns_cache=300,
        ssl=config.tls if config.tls is not None else True,
        socket_factory=timing.socket_factory,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # asyncio.timeout in fetch.py is the one timeout authority; aiohttp's hidden
        # 300 s total is switched off so it cannot fire first.
        timeout=aiohttp.ClientTimeout(total=None, connect=config.connect_timeout),
        headers={"User-Agent": config.user_agent or f"afetch/{__version__}"},
        # A list fetcher must not carry cookies from one URL's response to the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Environment proxies are resolved once per run by afetch.proxy instead.
        trust_env=False,
        max_line_size=MAX_HEADER_LINE,
        max_field_size=MAX_HEADER_LINE,
        max_headers=MAX_HEADER_COUNT,
        trace_configs=[timing.trace_config()],
    )


class Engine:
    """Runs one stream of requests; ``stop()`` ends it early and cleanly."""

    def __init__(self, config: Config, *, emit_cancelled: bool = True) -> None:
        self.config = config
        self.emit_cancelled = emit_cancelled
        self._inflight: dict[int, _Ticket] = {}
        self._finished: list[FetchResult] = []  # done, but the stop came before delivery
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Start no more requests; in-flight ones end as ``cancelled`` records."""
        if self._stopping:
            return
        self._stopping = True
        for task in self._tasks:
            task.cancel()

    async def results(
        self, requests: AsyncIterable[FetchSpec | FetchResult] | Iterable[FetchSpec | FetchResult]
    ) -> AsyncIterator[FetchResult]:
        """Yield one result per request, in completion order."""
        out: asyncio.Queue[FetchResult | object] = asyncio.Queue(maxsize=self.config.concurrency)
        async with open_session(self.config) as session:
            client = Client(session, Proxies.from_option(self.config.proxy))
            supervisor = asyncio.create_task(self._supervise(client, _aiter(requests), out))
            try:
                while (item := await out.get()) is not _DONE:
                    if isinstance(item, _Crash):
                        raise item.error
                    assert isinstance(item, FetchResult)
                    yield item
            finally:
                self.stop()
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor

    async def _supervise(
        self,
        client: Client,
        requests: AsyncGenerator[FetchSpec | FetchResult, None],
        out: asyncio.Queue[FetchResult | object],
    ) -> None:
        todo: asyncio.Queue[FetchSpec | None] = asyncio.Queue(maxsize=self.config.concurrency)
        self._tasks = [
            asyncio.create_task(self._work(client, todo, out))
            for _ in range(self.config.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._feed(requests, todo, out)))
        if self._stopping:  # stopped before the tasks existed
            for task in self._tasks:
                task.cancel()
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in self._finished:
            await out.put(result)
        if self.emit_cancelled:
            now = time.perf_counter()
            for ticket in sorted(self._inflight.values(), key=lambda t: t.spec.index):
                elapsed = round((now - ticket.started) * 1000, 3)
                await out.put(cancelled(ticket.spec, elapsed, ticket.attempts))
        # A failure of afetch's own input stage is a bug or an I/O fault the caller must see.
        crash = next((o for o in outcomes if isinstance(o, Exception)), None)
        await out.put(_Crash(crash) if crash else _DONE)

    async def _feed(
        self,
        requests: AsyncGenerator[FetchSpec | FetchResult, None],
        todo: asyncio.Queue[FetchSpec | None],
        out: asyncio.Queue[FetchResult | object],
    ) -> None:
        try:
            async for item in requests:
                if isinstance(item, FetchResult):
                    await out.put(item)
                else:
                    await todo.put(item)
        finally:
            await requests.aclose()
        for _ in range(self.config.concurrency):
            await todo.put(None)

    async def _work(
        self,
        client: Client,
        todo: asyncio.Queue[FetchSpec | None],
        out: asyncio.Queue[FetchResult | object],
    ) -> None:
        while (spec := await todo.get()) is not None:
            ticket = _Ticket(spec, time.perf_counter())
            self._inflight[spec.index] = ticket
            try:
                result = await fetch_one(client, spec, self.config, ticket.count_attempt)
            except Exception as exc:  # a bug in afetch: still one record for this index
                result = internal_error(spec, exc, ticket.attempts)
            del self._inflight[spec.index]
            try:
                await out.put(result)
            except asyncio.CancelledError:
                self._finished.append(result)
                raise


async def _aiter(
    items: AsyncIterable[FetchSpec | FetchResult] | Iterable[FetchSpec | FetchResult],
) -> AsyncGenerator[FetchSpec | FetchResult, None]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
