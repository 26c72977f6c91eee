"""Results → JSON lines on a binary stream (stdout or ``-o FILE``).

Writes happen on a thread: a consumer that reads slowly (or a full pipe)
then blocks only that thread, never the event loop, so in-flight requests
do not hit spurious timeouts. When more than ``high_water`` bytes wait, the
producer is held back (back-pressure), so memory stays bounded. Every write
is of whole lines and is flushed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import stat
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import IO, Any

import orjson

from afetch.models import FetchResult

_DUMP_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def silence_stdout() -> None:
    """After EPIPE (``| head`` left), point fd 1 at /dev/null so Python's exit flush
    stays quiet: afetch then ends quietly, as cat does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def dumps(record: dict[str, Any]) -> bytes:
    """One record as one compact JSON line."""
    return orjson.dumps(record, option=_DUMP_OPTIONS)


class ThreadedWriter:
    """Bytes to a binary stream, written off the event loop, whole pieces only."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        on_broken: Callable[[], None] | None = None,
        high_water: int = 1 << 20,
        name: str = "afetch-output",
        around: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self._stream = stream
        self._around = around  # e.g. clear the progress bar on the same terminal
        self._on_broken = on_broken
        self._high_water = high_water
        self._cond = threading.Condition()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._gathered: list[bytes] = []  # this loop pass's pieces, not yet handed over
        self._gathered_bytes = 0
        self._handover_due = False
        self._closing = False
        self.error: OSError | None = None
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._room.set()
        self._finished = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def broken(self) -> bool:
        """True once the consumer has gone away (EPIPE) or the stream failed."""
        return self.error is not None

    async def write_bytes(self, data: bytes) -> None:
        """Queue one piece; waits while too much output is already waiting.

        Pieces of one pass of the event loop go to the thread together (one
        wake-up, one write): waking it per record costs a thread switch and a
        GIL hand-over each, which at thousands of records a second was a
        large share of the loop's time.
        """
        if self.error is None and self._queue(data):
            await self._room.wait()

    def _queue(self, data: bytes) -> bool:
        """Gather one piece for the thread; True when the producer must wait for room."""
        self._gathered.append(data)
        self._gathered_bytes += len(data)
        if not self._handover_due:
            self._handover_due = True
            self._loop.call_soon(self._hand_over)
        if self._gathered_bytes + self._pending_bytes > self._high_water:
            self._hand_over()
        return not self._room.is_set()

    def _hand_over(self) -> None:
        self._handover_due = False
        if not self._gathered:
            return
        with self._cond:
            self._pending.extend(self._gathered)
            self._pending_bytes += self._gathered_bytes
            self._cond.notify()
            if self._pending_bytes > self._high_water:
                self._room.clear()
        self._gathered, self._gathered_bytes = [], 0

    async def close(self) -> None:
        """Write what is waiting and stop the thread."""
        self._hand_over()
        with self._cond:
            self._closing = True
            self._cond.notify()
        await self._finished.wait()

    def _run(self) -> None:
        try:
            while batch := self._next_batch():
                self._write(batch)
        finally:
            self._wake(self._finished.set)

    def _next_batch(self) -> list[bytes]:
        with self._cond:
            while not self._pending and not self._closing:
                self._cond.wait()
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            # The producer clears _room under this lock, so this read cannot miss it.
            if not self._room.is_set():
                self._wake(self._room.set)
        return batch

    def _write(self, batch: list[bytes]) -> None:
        if self.error is not None:
            return  # keep draining so the producer never waits on a dead stream
        try:
            with self._around():
                self._stream.write(b"".join(batch))
                self._stream.flush()
        except OSError as exc:
            self.error = exc
            if self._on_broken is not None:
                self._wake(self._on_broken)

    def _wake(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(callback)


class RecordWriter(ThreadedWriter):
    """Records as JSON lines; notices at once when the reader of a pipe goes away."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        on_broken: Callable[[], None] | None = None,
        high_water: int = 1 << 20,
        watch_reader: bool = True,
        around: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        super().__init__(stream, on_broken=on_broken, high_water=high_water, around=around)
        self._watched = self._watch_reader() if watch_reader else None

    async def write(self, result: FetchResult) -> None:
        """Queue one record (see ``write_bytes``)."""
        # A worker's record (--workers) is already a JSON line: passed on untouched.
        if self.error is None and self._queue(result.line or dumps(result.to_record())):
            await self._room.wait()

    def _watch_reader(self) -> threading.Thread | None:
        """Learn at once when the reader of a pipe goes away (``| head -1``).

        Waiting for the next write would take as long as the slowest request in
        flight. A thread of its own polls the pipe for a hang-up: the event
        loop cannot watch it (uvloop would make the fd non-blocking, and the
        writer thread's large writes would then tear lines).
        """
        try:
            fd = self._stream.fileno()
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return None
        except (OSError, ValueError, AttributeError):
            return None
        thread = threading.Thread(
            target=self._poll_reader, args=(fd,), name="afetch-pipe-watch", daemon=True
        )
        thread.start()
        return thread

    def _poll_reader(self, fd: int) -> None:
        poller = select.poll()
        poller.register(fd, 0)  # no events asked for: POLLERR and POLLHUP are always reported
        while not self._closing and self.error is None:
            try:
                events = poller.poll(200)
            except OSError:
                return
            if any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events):
                self._wake(self._reader_left)
                return

    def _reader_left(self) -> None:
        if self.error is None:
            self.error = BrokenPipeError(errno.EPIPE, "the reader closed the pipe")
            if self._on_broken is not None:
                self._on_broken()
