"""Specs → results as they finish, under bounded concurrency, over one client.

A feeder pulls requests from the input only when there is room, and a
fixed pool of ``concurrency`` fetchers (tasks) fetches them: memory is bounded by the
concurrency, never by the length of the input (no task per line up front).
Results pass through a bounded outbox, so a slow consumer slows fetching.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from afetch.config import Config
from afetch.errors import ErrorKind, OutputFailure
from afetch.fetch import Client, fetch_one
from afetch.http import open_transport
from afetch.models import FetchResult, FetchSpec, internal_error, skipped
from afetch.pacing import HostKey, Pacer, host_key
from afetch.run.scheduler import NO_LIMITS, Requests, RunLimits, Scheduler, Ticket

if TYPE_CHECKING:
    from afetch.run.helpers import Helpers

log = logging.getLogger("afetch")

_DONE = object()
#: With --per-host, how many requests may wait behind busy hosts while the input
#: is searched for requests to other hosts.
PARKED_LOOKAHEAD = 10_000
#: --workers auto: the loop is saturated when this process used this share of a
#: core, over every LOAD_SAMPLE seconds for GROW_AFTER seconds in a row.
SATURATED = 0.85
LOAD_SAMPLE = 0.5
GROW_AFTER = 2.0
#: ...and at least this share of the answers in those samples came on new connections:
#: a process taken on keeps connections of its own, so a run that reuses them (few
#: hosts) would open them again, and gain little (measured: 0.94x the wall at 1.25x the
#: CPU on one host; with --http2 on 100 hosts, slower and twice the connections).
FRESH_SHARE = 0.5


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
        self._grow = limits.grow and may_grow(config)
        self._helpers: Helpers | None = None  # worker processes taken on (--workers auto)
        self._local = 0  # with helpers: the requests this process holds itself
        self._local_cap = config.concurrency  # with helpers: what is left of -c here
        self._input_done = False
        self._answered = 0  # with --workers auto: answers, and those on new connections
        self._fresh = 0
        self._ready: asyncio.Queue[FetchSpec | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(self._room_size)
        self._out = _Outbox(config.concurrency)

    def _halt(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._helpers is not None:
            self._helpers.halt()

    @property
    def running(self) -> int:
        if self._helpers is not None:
            return min(self._running + self._helpers.running, self.config.concurrency)
        return self._running

    @property
    def processes(self) -> int:
        """This one and the worker processes it took on."""
        return 1 + (len(self._helpers) if self._helpers is not None else 0)

    async def results(self, requests: Requests) -> AsyncGenerator[FetchResult, None]:
        """Yield one result per request, in completion order (or input order)."""
        out = self._out
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
        ready, room = self._ready, self._room  # the room bounds the queue
        self._tasks = [
            asyncio.create_task(self._fetcher(client, ready, room, out))
            for _ in range(self.config.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._feed(requests, ready, room, out)))
        if self.stopping:  # stopped before the tasks existed
            self._halt()
        watch = asyncio.create_task(self._watch_load()) if self._grow else None
        try:
            outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._helpers is not None:  # their records, before the leftovers'
                await self._helpers.finish()
        except BaseException:  # cancelled (the consumer left): no process outlives the run
            if self._helpers is not None:
                self._helpers.halt()
                await self._helpers.finish(abandon=True)
            raise
        finally:
            if watch is not None:
                watch.cancel()
        for result in [*self._finished, *self.window.rest(), *self._leftovers()]:
            await out.put(result)
        # A failure of afetch's own input stage is a bug or an I/O fault the caller must see.
        crash = next((o for o in outcomes if isinstance(o, Exception)), None)
        if crash is None and self._helpers is not None:
            crash = self._helpers.failure
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
                    ticket = self.ledger.admit(item)
                    if self._helpers is not None:
                        await self._place(ticket)
                    elif self._pacer.admit(item):
                        ready.put_nowait(item)
            finally:
                self._input_done = True
                if self._helpers is not None:
                    self._helpers.close_input()
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
                if self._grow:
                    self._answered += 1
                    self._fresh += result.reused is False
            self._running -= 1
            if self._helpers is not None:
                self._local -= 1
                self._helpers.freed.set()
            for following in pacer.release(spec):
                ready.put_nowait(following)
            self.ledger.settle(spec.index)
            if self.keep_failed is not None:
                self._settled(spec, result)
            await self._deliver(ticket.seq, result, out, room)

    async def _place(self, ticket: Ticket) -> None:
        """With helpers: fetch it here while this process has room, else in a helper."""
        assert self._helpers is not None
        while True:
            if self._local < self._local_cap:
                self._local += 1
                if self._pacer.admit(ticket.spec):
                    self._ready.put_nowait(ticket.spec)
                return
            if self._helpers.place(ticket):
                return
            self._helpers.freed.clear()
            await self._helpers.freed.wait()

    async def _helped(self, index: int, result: FetchResult) -> None:
        """A helper's record: settled and delivered as one of this process's own."""
        ticket = self.ledger.settle(index)
        if self.keep_failed is not None:
            self._settled(ticket.spec, result)
        if result.error is not None and result.error.kind is ErrorKind.CANCELLED:
            self.unfinished += 1
        await self._deliver(ticket.seq, result, self._out, self._room)

    def _reclaim(self, tickets: list[Ticket]) -> None:
        """A helper died holding these: this process fetches them."""
        self.deaths += 1
        self._local += len(tickets)
        for ticket in tickets:
            if self._pacer.admit(ticket.spec):
                self._ready.put_nowait(ticket.spec)

    async def _watch_load(self) -> None:
        """Take on a worker process each time this loop stays saturated (--workers auto)."""
        cores = usable_cores()
        cpu, wall = time.process_time(), time.perf_counter()
        saturated = 0.0
        while self.processes < cores:
            self._answered = self._fresh = 0
            await asyncio.sleep(LOAD_SAMPLE)
            now_cpu, now = time.process_time(), time.perf_counter()
            busy = (now_cpu - cpu) / max(now - wall, 1e-6)
            fresh = self._answered > 0 and self._fresh >= FRESH_SHARE * self._answered
            saturated = saturated + now - wall if busy >= SATURATED and fresh else 0.0
            cpu, wall = now_cpu, now
            if saturated >= GROW_AFTER and not self._input_done and not self.stopping:
                if not await self._take_on_helper():
                    return
                saturated = 0.0
                cpu, wall = time.process_time(), time.perf_counter()

    async def _take_on_helper(self) -> bool:
        """One more worker process with an even share of -c, taken from this one's."""
        share = self.config.concurrency // (self.processes + 1)
        if share < 1 or self._local_cap - share < 1:
            return False
        if self._helpers is None:
            from afetch.run.helpers import Helpers

            self._helpers = Helpers(
                self.config,
                self.emit_cancelled,
                self.pacing,
                self._helped,
                self._reclaim,
                self.stop,
            )
            self._local = len(self.ledger)  # everything read so far is fetched here
        self._local_cap -= share
        await self._helpers.add(share)
        if self.config.log_pacing:  # --verbose
            log.warning(
                "afetch: one core is not enough: fetching in %d processes (-c %d here)",
                self.processes,
                self._local_cap,
            )
        return True

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


def may_grow(config: Config) -> bool:
    """Whether --workers auto may add processes: not when one process must see every
    start (--rate), every cookie, or every request to a host (per-host caps and pauses)."""
    pinned = config.per_host or config.max_host_errors or config.host_interval
    jar = config.cookie_file is not None or config.cookie_jar is not None
    return not pinned and config.rate is None and not jar and config.concurrency > 1


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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
