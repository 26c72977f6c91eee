"""Specs → results as they finish, under bounded concurrency, over one client.

A feeder pulls requests from the input only when a worker is free, and a
fixed pool of ``concurrency`` workers fetches them: memory is bounded by the
concurrency, never by the length of the input (no task per line up front).
Results pass through a bounded outbox, so a slow consumer slows fetching.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from dataclasses import dataclass

from afetch.config import Config
from afetch.fetch import Client, fetch_one
from afetch.http import open_transport
from afetch.models import FetchResult, FetchSpec, cancelled, internal_error
from afetch.pacing import HostSlots, Pacer, host_key

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


@dataclass(slots=True)
class _Ticket:
    """A request taken from the input: enough to write its ``cancelled`` record."""

    spec: FetchSpec
    seq: int  # position among everything read, for --ordered
    started: float | None = None  # None while it waits for a worker or its host
    attempts: int = 0

    def count_attempt(self) -> None:
        self.attempts += 1

    def cancelled(self, now: float) -> FetchResult:
        elapsed = 0.0 if self.started is None else round((now - self.started) * 1000, 3)
        return cancelled(self.spec, elapsed, self.attempts)


def open_client(config: Config) -> Client:
    """What the run's requests share; the aiohttp session is made only if one needs it."""
    return Client(open_transport(config), Pacer(config))


class Engine:
    """Runs one stream of requests; ``stop()`` ends it early and cleanly."""

    def __init__(
        self, config: Config, *, emit_cancelled: bool = True, ordered: bool = False
    ) -> None:
        self.config = config
        self.emit_cancelled = emit_cancelled
        self.ordered = ordered
        self._held: dict[int, FetchResult] = {}  # --ordered: finished, waiting for their turn
        self._next_seq = 0
        self._seq = 0
        self._flush = asyncio.Lock()
        self._admitted: dict[int, _Ticket] = {}  # taken from the input, not yet delivered
        self._finished: list[FetchResult] = []  # done, but the stop came before delivery
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        #: Requests read but not finished when the run stopped (with or without records).
        self.unfinished = 0
        self.deaths = 0  # worker processes that died: none here (the interface of WorkerPool)
        self._hosts = HostSlots(config.per_host)
        # Requests taken from the input but not yet delivered: those in flight, a
        # queue's worth waiting for a worker, and (with --per-host) a look-ahead of
        # parked requests so other hosts are found behind a slow one.
        # With --ordered, finished records also wait there behind the oldest
        # unfinished one, so the window (and memory) stays bounded.
        self._window_size = (4 if ordered else 2) * config.concurrency + (
            PARKED_LOOKAHEAD if config.per_host else 0
        )

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Start no more requests; unfinished ones end as ``cancelled`` records."""
        if self._stopping:
            return
        self._stopping = True
        for task in self._tasks:
            task.cancel()

    async def results(
        self, requests: AsyncIterable[FetchSpec | FetchResult] | Iterable[FetchSpec | FetchResult]
    ) -> AsyncGenerator[FetchResult, None]:
        """Yield one result per request, in completion order."""
        out = _Outbox(self.config.concurrency)
        client = open_client(self.config)
        supervisor = asyncio.create_task(self._supervise(client, as_async(requests), out))
        try:
            while True:
                for item in await out.take():
                    if item is _DONE:
                        return
                    if isinstance(item, _Crash):
                        raise item.error
                    assert isinstance(item, FetchResult)
                    yield item
        finally:
            self.stop()
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
        ready: asyncio.Queue[FetchSpec | None] = asyncio.Queue()  # bounded by the window
        window = asyncio.Semaphore(self._window_size)
        self._tasks = [
            asyncio.create_task(self._work(client, ready, window, out))
            for _ in range(self.config.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._feed(requests, ready, window, out)))
        if self._stopping:  # stopped before the tasks existed
            for task in self._tasks:
                task.cancel()
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in [*self._finished, *(self._held[seq] for seq in sorted(self._held))]:
            await out.put(result)
        self.unfinished = len(self._admitted)
        if self.emit_cancelled:
            now = time.perf_counter()
            for ticket in sorted(self._admitted.values(), key=lambda t: t.spec.index):
                await out.put(ticket.cancelled(now))
        # A failure of afetch's own input stage is a bug or an I/O fault the caller must see.
        crash = next((o for o in outcomes if isinstance(o, Exception)), None)
        await out.put(_Crash(crash) if crash else _DONE)

    async def _feed(
        self,
        requests: AsyncGenerator[FetchSpec | FetchResult, None],
        ready: asyncio.Queue[FetchSpec | None],
        window: asyncio.Semaphore,
        out: _Outbox,
    ) -> None:
        try:
            try:
                while True:
                    await window.acquire()  # before reading: input is pulled only as room frees
                    item = await anext(requests, None)
                    if item is None:
                        break
                    seq, self._seq = self._seq, self._seq + 1
                    if isinstance(item, FetchResult):
                        await self._deliver(seq, item, out, window)
                        continue
                    if item.index in self._admitted:
                        raise ValueError(f"two requests have index {item.index}")
                    self._admitted[item.index] = _Ticket(item, seq)
                    if self._hosts.admit(item):
                        ready.put_nowait(item)
            finally:
                await requests.aclose()
            for _ in range(self._window_size - 1):  # the whole window back: all delivered
                await window.acquire()
        finally:
            # Also when the input failed: the workers finish what they hold and stop,
            # and the failure reaches the caller after those records (never a hang).
            for _ in range(self.config.concurrency):
                ready.put_nowait(None)

    async def _work(
        self,
        client: Client,
        ready: asyncio.Queue[FetchSpec | None],
        window: asyncio.Semaphore,
        out: _Outbox,
    ) -> None:
        loop = asyncio.get_running_loop()
        while (spec := await ready.get()) is not None:
            # A paused host's requests wait off the workers, which go on with other hosts.
            pauses = client.pacer.pauses
            if pauses.any and (pause := pauses.remaining(host_key(spec.target))) > 0:
                loop.call_later(pause, ready.put_nowait, spec)
                continue
            ticket = self._admitted[spec.index]
            ticket.started = time.perf_counter()
            try:
                result = await fetch_one(client, spec, self.config, ticket.count_attempt)
            except Exception as exc:  # a bug in afetch: still one record for this index
                result = internal_error(spec, exc, ticket.attempts)
            if (following := self._hosts.release(spec)) is not None:
                ready.put_nowait(following)
            del self._admitted[spec.index]
            await self._deliver(ticket.seq, result, out, window)

    async def _deliver(
        self,
        seq: int,
        result: FetchResult,
        out: _Outbox,
        window: asyncio.Semaphore,
    ) -> None:
        """Pass a result on (with --ordered, once all before it have gone); free its room."""
        if not self.ordered:
            try:
                await out.put(result)
            except asyncio.CancelledError:
                self._finished.append(result)
                raise
            window.release()
            return
        self._held[seq] = result
        async with self._flush:  # one flusher at a time keeps the order
            while self._next_seq in self._held:
                await out.put(self._held[self._next_seq])
                del self._held[self._next_seq]
                self._next_seq += 1
                window.release()


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
