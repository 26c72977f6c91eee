"""``--workers N``: the same engine in N processes, one coordinator keeping the guarantees.

The coordinator (the afetch process itself) keeps every stage that must see
the whole run: reading and numbering the input, --dedupe/--shard/--resume,
ordering, the output file, the report, the tally, signals and the exit
status. Workers (afetch.run.worker) only fetch: each gets its share of
--concurrency (the shares add up to it exactly) and requests through a pipe,
at most twice its share outstanding, to the least busy worker — or, with
--per-host, always to the worker that owns the host, so the per-host cap
and host pauses hold as in one process. Only the coordinator writes records,
so lines are whole and a resumed run sees each index once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace

import orjson

from afetch.config import Config
from afetch.errors import ErrorKind, OutputFailure
from afetch.http.options import MAX_HEADER_COUNT, MAX_HEADER_LINE
from afetch.models import FetchResult, FetchSpec
from afetch.pacing import host_home
from afetch.run.engine import as_async
from afetch.run.scheduler import NO_LIMITS, Requests, RunLimits, Scheduler, Ticket
from afetch.sinks.tally import n_requests

#: Messages for the person running afetch; the CLI sends them to its stderr.
log = logging.getLogger("afetch")

_Item = tuple[int, FetchResult, int | None]  # (seq, result, worker that held it)
_READ_SIZE = 256 * 1024
#: The key of the one line a worker writes when a sink failed there (OutputFailure).
FATAL = "afetch_fatal"
_FATAL_LINE = b'{"%s":' % FATAL.encode()
#: A worker's last line: how it paced its hosts (afetch.pacing.PacingNotes).
PACING = "afetch_pacing"
_PACING_LINE = b'{"%s":' % PACING.encode()


def record_limit(config: Config) -> int:
    """The longest record line a worker can write, as a StreamReader limit.

    A body escaped as JSON text takes up to 6 bytes per byte (``\\u0001``);
    headers add at most 256 fields of 64 KiB. The limit only caps how far the
    reader's buffer may grow; nothing is allocated up front.
    """
    return 6 * config.max_body + MAX_HEADER_COUNT * MAX_HEADER_LINE + (1 << 20)


def shares(total: int, workers: int) -> list[int]:
    """Split ``total`` concurrency into ``workers`` parts that add up to it exactly."""
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


@dataclass(slots=True)
class _Worker:
    process: asyncio.subprocess.Process
    slots: asyncio.Semaphore
    outstanding: int = 0
    dead: bool = False


class WorkerPool(Scheduler):
    """The scheduler over worker processes: same contract, same shared parts as Engine."""

    def __init__(
        self,
        config: Config,
        workers: int,
        limits: RunLimits = NO_LIMITS,
    ) -> None:
        super().__init__(config, limits)
        self._shares = [share for share in shares(config.concurrency, workers) if share]
        self._workers: list[_Worker] = []
        self._feeder: asyncio.Task[None] | None = None
        self._feeding = True
        self._resends: set[asyncio.Task[None]] = set()
        self._record_limit = record_limit(config)
        self._fatal: Exception | None = None  # a worker's sink failed, every worker died

    def _halt(self) -> None:
        """Workers stop theirs and report what finished."""
        if self._feeder is not None:
            self._feeder.cancel()
        for worker in self._workers:
            signal_worker(worker.process, signal.SIGTERM)

    async def results(self, requests: Requests) -> AsyncGenerator[FetchResult, None]:
        """One result per request read, in completion order (or input order)."""
        out: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._workers = [await self._spawn(share) for share in self._shares]
        readers = [
            asyncio.create_task(self._read(number, worker, out))
            for number, worker in enumerate(self._workers)
        ]
        self._feeder = asyncio.create_task(self._feed(requests, out))
        if self.stopping:
            self._halt()
        self._start_clock()
        completed = False
        try:
            async for result in self._deliver(out, len(readers)):
                self._passed(result)
                yield result
            completed = True
            # After the records that finished: a worker's failed sink or every worker's
            # death, else what made the input or a reader fail (no failure goes unseen).
            error = self._fatal or _first_failure([self._feeder, *readers])
            if error is not None:
                raise error
        finally:
            self._wind_up(completed)
            for task in readers:
                task.cancel()
            for worker in self._workers:
                await reap(worker.process)

    async def _spawn(self, share: int) -> _Worker:
        process = await spawn_worker(self.config, share, self.emit_cancelled)
        return _Worker(process, asyncio.Semaphore(2 * share))

    async def _feed(self, requests: Requests, out: asyncio.Queue[_Item | None]) -> None:
        try:
            async for item in as_async(requests):
                if isinstance(item, FetchResult):
                    await out.put((self.ledger.take_seq(), item, None))
                else:
                    # In the ledger before it waits for a slot: a stop now still
                    # gives it a record.
                    await self._send(self.ledger.admit(item))
        finally:
            while self._resends:  # requests of a dead worker, going to the survivors
                await asyncio.gather(*self._resends, return_exceptions=True)
            self._feeding = False
            for worker in self._workers:
                assert worker.process.stdin is not None
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()  # no more work: the worker drains and exits

    async def _send(self, ticket: Ticket) -> None:
        spec = ticket.spec
        while True:
            number = self._choose(spec)
            worker = self._workers[number]
            await worker.slots.acquire()
            if not worker.dead:  # it may have died while this waited for a slot
                break
        worker.outstanding += 1
        ticket.holder = number
        stdin = worker.process.stdin
        assert stdin is not None
        if stdin.is_closing():
            return  # the worker is dying: when its reader sees it, _died sends this again
        stdin.write(frame(spec))
        with contextlib.suppress(ConnectionError):  # likewise
            await stdin.drain()

    @property
    def running(self) -> int:
        """Sent to a worker and not back (a worker queues up to twice its share)."""
        sent = sum(worker.outstanding for worker in self._workers if not worker.dead)
        return min(sent, self.config.concurrency)

    def _choose(self, spec: FetchSpec) -> int:
        alive = [n for n, worker in enumerate(self._workers) if not worker.dead]
        if not alive:
            raise RuntimeError("every worker process died")
        if (home := host_home(self.config, spec, alive)) is not None:
            return home
        return min(alive, key=lambda n: self._workers[n].outstanding)

    def _died(self, number: int, worker: _Worker) -> None:
        """A worker ended without being told to: its requests go to the survivors."""
        worker.dead = True
        self.deaths += 1
        for _ in range(len(self.ledger) + 1):  # wake a feeder waiting for its slots
            worker.slots.release()
        lost = sorted(
            (ticket for ticket in self.ledger.open.values() if ticket.holder == number),
            key=lambda ticket: ticket.seq,
        )
        code = worker.process.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
        alive = any(not w.dead for w in self._workers)
        if alive and self._feeding:
            for ticket in lost:
                ticket.holder = None
                task = asyncio.create_task(self._send(ticket))
                self._resends.add(task)
                task.add_done_callback(self._resends.discard)
            what = f"its {n_requests(len(lost))} in flight run again on the others"
        else:
            what = f"its {n_requests(len(lost))} in flight get records saying so"
        if not alive:  # nothing can fetch the rest of the input: the run ends, saying why
            self._fatal = self._fatal or RuntimeError("every worker process died")
            if self._feeder is not None:
                self._feeder.cancel()
        log.warning("afetch: worker process %d died (%s): %s", number + 1, how, what)

    async def _read(self, number: int, worker: _Worker, out: asyncio.Queue[_Item | None]) -> None:
        """Records as the worker wrote them, read in large pieces rather than line by line."""
        stdout = worker.process.stdout
        assert stdout is not None
        try:
            async for lines in worker_lines(stdout, self._record_limit):
                for line in lines:
                    if line.startswith(_PACING_LINE):
                        self.pacing.absorb(orjson.loads(line)[PACING])
                        continue
                    if line.startswith(_FATAL_LINE):
                        self._fatal = OutputFailure(orjson.loads(line)[FATAL])
                        self.stop()
                        continue
                    result = FetchResult.from_line(line + b"\n")
                    ticket = self.ledger.settle(result.index)
                    self._settled(ticket.spec, result)
                    out.put_nowait((ticket.seq, result, number))
        except Exception:
            self.stop()  # a bug here, not a dead worker: the run ends and raises it
            raise
        finally:
            if not self.stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.process.wait(), 5)
                if worker.process.returncode != 0 or self._feeding:
                    self._died(number, worker)
            await out.put(None)  # this worker is done

    async def _deliver(
        self, out: asyncio.Queue[_Item | None], readers: int
    ) -> AsyncIterator[FetchResult]:
        while readers:
            item = await out.get()
            if item is None:
                readers -= 1
                continue
            seq, result, holder = item
            if holder is not None:
                worker = self._workers[holder]
                worker.outstanding -= 1
                worker.slots.release()
                if result.error is not None and result.error.kind is ErrorKind.CANCELLED:
                    self.unfinished += 1  # a worker's record of a request the stop interrupted
            for ready in self.window.push(seq, result):
                yield ready
        for result in self.window.rest():
            yield result
        for result in self._unfinished():
            yield result

    def _unfinished(self) -> list[FetchResult]:
        """Records for requests read that no worker returned a record for."""
        if self.stopping:
            return self._leftovers()
        # Not stopped, yet requests are left: the worker processes that held them died.
        return self._leftovers(RuntimeError("worker process ended before finishing this request"))


def _first_failure(tasks: list[asyncio.Task[None]]) -> BaseException | None:
    for task in tasks:
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            return error
    return None


async def spawn_worker(
    config: Config, share: int, emit_cancelled: bool
) -> asyncio.subprocess.Process:
    """A worker process fetching with ``share`` of the concurrency, its Config sent."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "afetch.run.worker",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    blob = pickle.dumps((replace(config, concurrency=share, tls=None), emit_cancelled))
    assert process.stdin is not None
    process.stdin.write(b"%d\n" % len(blob) + blob)
    return process


async def worker_lines(stdout: asyncio.StreamReader, limit: int) -> AsyncIterator[list[bytes]]:
    """A worker's output as batches of whole lines, read in large pieces, not line by line."""
    tail = b""
    while piece := await stdout.read(_READ_SIZE):
        *lines, tail = (tail + piece).split(b"\n")
        if len(tail) > limit:
            raise ValueError("a worker wrote a record longer than any it can write")
        yield lines


def frame(spec: FetchSpec) -> bytes:
    """A request for a worker, length-prefixed so any line the parser accepts arrives whole.

    A request read from the input goes as its source (``[index, is_line,
    text]`` in JSON), parsed again in the worker exactly as here; a
    library caller's own FetchSpec, which has no source, goes pickled.
    """
    if spec.source is None:
        blob = pickle.dumps(spec)
        return b"p%d\n" % len(blob) + blob
    is_line, text = spec.source
    payload = orjson.dumps([spec.index, is_line, text])
    return b"%d\n" % len(payload) + payload


def signal_worker(process: asyncio.subprocess.Process, signum: int) -> None:
    # os.kill, not Process.send_signal: that polls (and may reap) the child first,
    # racing asyncio's child watcher, which then logs "Unknown child process".
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


async def reap(process: asyncio.subprocess.Process) -> None:
    """Wait for a worker told to stop; kill it if it does not within 10 s."""
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        signal_worker(process, signal.SIGKILL)
        await process.wait()
