"""Input files and stdin → batches of raw lines (bytes), read on a thread of their own.

The thread hands batches of whole lines to the event loop through a small
bounded queue: a slow or endless stdin never blocks the loop, a
ten-million-line file is never held in memory, and input is read only as
fast as the engine takes requests. A line longer than ``MAX_LINE`` becomes
an ``OverlongLine``; an input that looks binary is refused.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import gzip
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass

MAX_LINE = 64 * 1024
_READ_SIZE = 64 * 1024
_QUEUED_BATCHES = 4  # batches read ahead of the loop: bounds memory on a huge stdin
_GZIP_MAGIC = b"\x1f\x8b"
_PREVIEW = 200
#: Bytes of an input looked at for NUL bytes: a list of URLs has none (one in a line
#: is that line's invalid_input), a program or an image has many.
_SNIFF = 8192
_BINARY_NULS = 8
#: A UTF-16 byte-order mark (little- or big-endian): the input is read as UTF-16.
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True, slots=True)
class OverlongLine:
    """Stands for a line longer than MAX_LINE; only its start is kept."""

    preview: bytes


RawLine = bytes | OverlongLine


class InputError(Exception):
    """An input file could not be read; the message names it."""


# --------------------------------------------------------------------------
# Bytes → lines


class LineSplitter:
    """Cuts a byte stream into lines without ever buffering more than MAX_LINE."""

    def __init__(self) -> None:
        self._pending = b""
        self._overlong: bytes | None = None  # preview of the line being skipped

    def feed(self, chunk: bytes) -> list[RawLine]:
        lines: list[RawLine] = []
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            self._end_line(part, lines)
        self._grow(parts[-1])
        return lines

    def close(self) -> list[RawLine]:
        lines: list[RawLine] = []
        if self._pending or self._overlong is not None:
            self._end_line(b"", lines)
        return lines

    def _end_line(self, tail: bytes, lines: list[RawLine]) -> None:
        if self._overlong is not None:
            lines.append(OverlongLine(self._overlong))
        else:
            line = self._pending + tail if self._pending else tail
            lines.append(OverlongLine(line[:_PREVIEW]) if len(line) > MAX_LINE else line)
        self._pending, self._overlong = b"", None

    def _grow(self, part: bytes) -> None:
        if self._overlong is not None:
            return
        self._pending += part
        if len(self._pending) > MAX_LINE:
            self._overlong, self._pending = self._pending[:_PREVIEW], b""


_Source = tuple[Callable[[int], bytes], Callable[[], None]]
#: Opens standard input for reading: ``(read, close)``. The CLI's streams give it
#: (``cli/streams.py``: the one place that looks at ``sys.std*``); without one,
#: ``-`` cannot be read.
StdinOpener = Callable[[], _Source]


def _open_source(path: str, stdin: StdinOpener | None) -> _Source:
    """``(read, close)`` where one read() is one system call returning what is there."""
    if path == "-":
        if stdin is None:
            raise OSError("no standard input was given to read")
        return stdin()
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed through the returned close
    magic = raw.read(2)
    raw.seek(0)
    if not (path.endswith(".gz") or magic == _GZIP_MAGIC):
        return raw.read, raw.close
    unpacked = gzip.GzipFile(fileobj=raw, mode="rb")

    def close_both() -> None:
        unpacked.close()  # GzipFile leaves the file it reads open
        raw.close()

    return unpacked.read1, close_both


def read_lines(path: str, stdin: StdinOpener | None = None) -> Iterator[list[RawLine]]:
    """Yield batches of lines of one input, as soon as the source has data."""
    splitter = LineSplitter()
    first = True
    utf16: codecs.IncrementalDecoder | None = None
    try:
        read, close = _open_source(path, stdin)
        try:
            while chunk := read(_READ_SIZE):
                if first and chunk[:2] in _UTF16_BOMS:  # PowerShell's `>` writes UTF-16
                    utf16 = codecs.getincrementaldecoder("utf-16")("replace")
                if utf16 is not None:
                    chunk = utf16.decode(chunk).encode()
                if first and chunk.count(b"\0", 0, _SNIFF) >= _BINARY_NULS:
                    raise InputError(
                        f"{_display(path)}: looks binary (NUL bytes); not a list of URLs"
                    )
                first = False
                if batch := splitter.feed(chunk):
                    yield batch
            if utf16 is not None and (batch := splitter.feed(utf16.decode(b"", True).encode())):
                yield batch
        finally:
            close()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{_display(path)}: {exc}") from exc
    if tail := splitter.close():
        yield tail


def _display(path: str) -> str:
    return "<stdin>" if path == "-" else path


class _Reader(threading.Thread):
    """Reads every input in order and passes batches to the loop, blocking when it is full.

    Batches cross over with ``call_soon_threadsafe`` (a plain callback, never a
    coroutine: one created here and then refused by a closing loop would be
    reported as "never awaited" on stderr). ``slots`` is the back-pressure.
    """

    def __init__(
        self,
        paths: Sequence[str],
        queue: asyncio.Queue[list[RawLine] | InputError | None],
        loop: asyncio.AbstractEventLoop,
        stdin: StdinOpener | None = None,
    ) -> None:
        super().__init__(name="afetch-input", daemon=True)
        self._paths, self._queue, self._loop, self._stdin = paths, queue, loop, stdin
        self.slots = threading.Semaphore(_QUEUED_BATCHES)
        self.stopped = threading.Event()

    def run(self) -> None:
        # The loop may close while we wait: the run is over.
        with contextlib.suppress(RuntimeError):
            for path in self._paths:
                try:
                    for batch in read_lines(path, self._stdin):
                        if not self._put(batch):
                            return
                except InputError as exc:
                    if not self._put(exc):
                        return
            self._put(None)

    def _put(self, item: list[RawLine] | InputError | None) -> bool:
        self.slots.acquire()
        if self.stopped.is_set():
            return False
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        return True

    def stop(self) -> None:
        self.stopped.set()
        self.slots.release()  # wakes a reader waiting for a slot, so it sees the flag


async def read_raw_lines(
    paths: Sequence[str],
    on_error: Callable[[InputError], None] | None = None,
    stdin: StdinOpener | None = None,
) -> AsyncIterator[list[RawLine]]:
    """Batches of raw lines from the input files in order (``-`` is stdin)."""
    if not paths:
        return
    queue: asyncio.Queue[list[RawLine] | InputError | None] = asyncio.Queue()
    reader = _Reader(paths, queue, asyncio.get_running_loop(), stdin)
    reader.start()
    try:
        while (item := await queue.get()) is not None:
            reader.slots.release()
            if isinstance(item, InputError):
                if on_error is not None:
                    on_error(item)
                continue
            yield item
    finally:
        reader.stop()
