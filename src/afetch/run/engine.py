"""Specs → results as they finish, under bounded concurrency, over one client.

A feeder pulls requests from the input only when there is room, and a
fixed pool of ``concurrency`` fetchers (tasks) fetches them: memory is bounded by the
concurrency, never by the length of the input (no task per line up front).
Results pass through a bounded outbox, so a slow consumer slows fetching.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from dataclasses import dataclass

from afetch.config import Config
from afetch.errors import OutputFailure
from afetch.fetch import Client, fetch_one
from afetch.http import open_transport
from afetch.models import FetchResult, FetchSpec, internal_error, skipped
from afetch.pacing import HostKey, Pacer, host_key
from afetch.run.scheduler import NO_LIMITS, Requests, RunLimits, Scheduler

_DONE = object()
#: With --per-host, how many requests may wait behind busy hosts while the input
#: is searched for requests to other hosts.
PARKED_LOOKAHEAD = 10_000


@dataclass(frozen=True, slots=True)
class _Crash:
    """Carries an exception from the supervisor to the consumer."""

    error: Exception


class _Outbox:
    """Results on their way to the consumer, taken a batch per wake-up.

    An asyncio.Queue costs a future and a task switch per result; here the
    consumer takes everything that finished since it last looked. At most
    ``limit`` wait, so a slow consumer still slows the fetching.
    """

    def __init__(self, limit: int) -> None:
        self._items: list[FetchResult | object] = []
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self._room = asyncio.Event()

    async def put(self, item: FetchResult | object) -> None:
        while len(self._items) >= self._limit:
            self._room.clear()
            await self._room.wait()
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def take(self) -> list[FetchResult | object]:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items, self._items = self._items, []
        self._room.set()
        return items


def open_client(config: Config, pacer: Pacer | None = None) -> Client:
    """What the run's requests share; the aiohttp session is made only if one needs it."""
    cookies = None
    if config.cookie_file is not None or config.cookie_jar is not None:
        from afetch.cookies import CookieJar

        cookies = CookieJar(config.cookie_file, config.cookie_jar)
    return Client(open_transport(config.transport_options()), pacer or Pacer(config), cookies)


class Engine(Scheduler):
    """The scheduler of one process: ``concurrency`` fetchers over one client."""

    def __init__(self, config: Config, limits: RunLimits = NO_LIMITS) -> None:
        super().__init__(config, limits)
        self._flush = asyncio.Lock()
        self._finished: list[FetchResult] = []  # done, but the stop came before delivery
        self._tasks: list[asyncio.Task[None]] = []
        self._pacer = Pacer(config)
        self._pacer.running = self._running_to
        self.pacing = self._pacer.notes
        self._running = 0
        # Requests taken from the input but not yet delivered: those in flight, a
        # queue's worth waiting for a fetcher, and (with --per-host) a look-ahead of
        # parked requests so other hosts are found behind a slow one.
        # With --ordered, finished records also wait there behind the oldest
        # unfinished one, so the window (and memory) stays bounded.
        self._room_size = (4 if limits.ordered else 2) * config.concurrency + (
            PARKED_LOOKAHEAD if config.per_host else 0
        )

    def _halt(self) -> None:
        for task in self._tasks:
            task.cancel()

    @property
    def running(self) -> int:
        return self._running

    async def results(self, requests: Requests) -> AsyncGenerator[FetchResult, None]:
        """Yield one result per request, in completion order (or input order)."""
        out = _Outbox(self.config.concurrency)
        client = open_client(self.config, self._pacer)
        supervisor = asyncio.create_task(self._supervise(client, as_async(requests), out))
        self._start_clock()
        completed = False
        try:
            while True:
                for item in await out.take():
                    if item is _DONE:
                        completed = True
                        return
                    if isinstance(item, _Crash):
                        raise item.error
                    assert isinstance(item, FetchResult)
                    self._passed(item)
                    yield item
        finally:
            self._wind_up(completed)
            supervisor.cancel()
            try:
                # wait() does not raise the supervisor's cancellation, only our own.
                await asyncio.wait([supervisor])
            finally:
                # Even if this generator is closed from a task being cancelled (a
                # consumer that broke out early, at loop shutdown): no socket outlives it.
                await client.close()

    async def _supervise(
        self,
        client: Client,
        requests: AsyncGenerator[FetchSpec | FetchResult, None],
        out: _Outbox,
    ) -> None:
        await client.transport.prepare()
        ready: asyncio.Queue[FetchSpec | None] = asyncio.Queue()  # bounded by the room
        room = asyncio.Semaphore(self._room_size)
        self._tasks = [
            asyncio.create_task(self._fetcher(client, ready, room, out))
            for _ in range(self.config.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._feed(requests, ready, room, out)))
        if self.stopping:  # stopped before the tasks existed
            self._halt()
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in [*self._finished, *self.window.rest(), *self._leftovers()]:
            await out.put(result)
        # A failure of afetch's own input stage is a bug or an I/O fault the caller must see.
        crash = next((o for o in outcomes if isinstance(o, Exception)), None)
        await out.put(_Crash(crash) if crash else _DONE)

    def _running_to(self, host: HostKey) -> list[FetchSpec]:
        """The requests being fetched now to ``host`` (asked once per host slowed down)."""
        return [
            ticket.spec
            for ticket in self.ledger.open.values()
            if ticket.started is not None and host_key(ticket.spec.target) == host
        ]

    async def _feed(
        self,
        requests: AsyncGenerator[FetchSpec | FetchResult, None],
        ready: asyncio.Queue[FetchSpec | None],
        room: asyncio.Semaphore,
        out: _Outbox,
    ) -> None:
        try:
            try:
                while True:
                    await room.acquire()  # before reading: input is pulled only as room frees
                    item = await anext(requests, None)
                    if item is None:
                        break
                    if isinstance(item, FetchResult):
                        await self._deliver(self.ledger.take_seq(), item, out, room)
                        continue
                    self.ledger.admit(item)
                    if self._pacer.admit(item):
                        ready.put_nowait(item)
            finally:
                await requests.aclose()
            for _ in range(self._room_size - 1):  # the whole room back: all delivered
                await room.acquire()
        finally:
            # Also when the input failed: the fetchers finish what they hold and stop,
            # and the failure reaches the caller after those records (never a hang).
            for _ in range(self.config.concurrency):
                ready.put_nowait(None)

    async def _fetcher(
        self,
        client: Client,
        ready: asyncio.Queue[FetchSpec | None],
        room: asyncio.Semaphore,
        out: _Outbox,
    ) -> None:
        loop = asyncio.get_running_loop()
        pacer = client.pacer
        while (spec := await ready.get()) is not None:
            # A paused host's requests wait off the fetchers, which go on with other hosts.
            if (pause := pacer.pause_before(spec)) > 0:
                loop.call_later(pause, ready.put_nowait, spec)
                continue
            ticket = self.ledger.open[spec.index]
            ticket.started = time.perf_counter()
            self._running += 1
            if (why := pacer.given_up(spec)) is not None:
                result = skipped(spec, why)
            else:
                try:
                    result = await fetch_one(client, spec, self.config, ticket.count_attempt)
                except OutputFailure:
                    self.stop()  # a sink failed: the run ends, raising it after what finished
                    raise
                except Exception as exc:  # a bug in afetch: still one record for this index
                    result = internal_error(spec, exc, ticket.attempts)
                pacer.settled(spec, result)
            self._running -= 1
            for following in pacer.release(spec):
                ready.put_nowait(following)
            self.ledger.settle(spec.index)
            if self.keep_failed is not None:
                self._settled(spec, result)
            await self._deliver(ticket.seq, result, out, room)

    async def _deliver(
        self,
        seq: int,
        result: FetchResult,
        out: _Outbox,
        room: asyncio.Semaphore,
    ) -> None:
        """Pass a result on (with --ordered, once all before it have gone); free its room."""
        if not self.window.ordered:
            try:
                await out.put(result)
            except asyncio.CancelledError:
                self._finished.append(result)
                raise
            room.release()
            return
        ready = self.window.push(seq, result)
        async with self._flush:  # one flusher at a time keeps the order (the lock is FIFO)
            for index, passing in enumerate(ready):
                try:
                    await out.put(passing)
                except asyncio.CancelledError:
                    self._finished.extend(ready[index:])
                    raise
                room.release()


def as_async(
    items: AsyncIterable[FetchSpec | FetchResult] | Iterable[FetchSpec | FetchResult],
) -> AsyncGenerator[FetchSpec | FetchResult, None]:
    """Requests from a plain or an async iterable, as one async generator.

    An async generator (the CLI's input) is used as it is: each wrapping
    layer would cost a coroutine step per request.
    """
    if isinstance(items, AsyncGenerator):
        return items
    return _wrap(items)


async def _wrap(
    items: AsyncIterable[FetchSpec | FetchResult] | Iterable[FetchSpec | FetchResult],
) -> AsyncGenerator[FetchSpec | FetchResult, None]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
