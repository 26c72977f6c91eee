"""Results → JSON lines on a binary stream (stdout or ``-o FILE``), and a JUnit report.

Writes happen on a thread: a consumer that reads slowly (or a full pipe)
then blocks only that thread, never the event loop, so in-flight requests
do not hit spurious timeouts. When more than ``high_water`` bytes wait, the
producer is held back (back-pressure), so memory stays bounded. Every write
is of whole lines and is flushed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import orjson

from afetch.models import NO_ID, FetchResult

_DUMP_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def dumps(record: dict[str, Any]) -> bytes:
    """One record as one compact JSON line."""
    return orjson.dumps(record, option=_DUMP_OPTIONS)


class RecordWriter:
    """Serializes records and writes them off the event loop, whole lines only."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        on_broken: Callable[[], None] | None = None,
        high_water: int = 1 << 20,
    ) -> None:
        self._stream = stream
        self._on_broken = on_broken
        self._high_water = high_water
        self._cond = threading.Condition()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._closing = False
        self.error: OSError | None = None
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        self._room.set()
        self._finished = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="afetch-output", daemon=True)
        self._thread.start()

    @property
    def broken(self) -> bool:
        """True once the consumer has gone away (EPIPE) or the stream failed."""
        return self.error is not None

    async def write(self, record: dict[str, Any]) -> None:
        """Queue one record; waits while too much output is already waiting."""
        if self.error is not None:
            return
        data = dumps(record)
        with self._cond:
            self._pending.append(data)
            self._pending_bytes += len(data)
            self._cond.notify()
            if self._pending_bytes > self._high_water:
                self._room.clear()
        if not self._room.is_set():
            await self._room.wait()

    async def close(self) -> None:
        """Write what is waiting and stop the thread."""
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
            self._stream.write(b"".join(batch))
            self._stream.flush()
        except OSError as exc:
            self.error = exc
            if self._on_broken is not None:
                self._wake(self._on_broken)

    def _wake(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(callback)


_XML_UNSAFE = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: str) -> str:
    return escape(_XML_UNSAFE.sub("\ufffd", value))


def _xml_attr(value: str) -> str:
    return quoteattr(_XML_UNSAFE.sub("\ufffd", value))


class JUnitReport:
    """A JUnit XML report: one ``<testcase>`` per record, complete and well-formed at close.

    Test cases are streamed to a side file as records arrive (constant memory
    for any number of records); ``close`` writes the ``<testsuite>`` header,
    whose counts are known only at the end, then the cases, into a temporary
    file that is renamed over PATH, so a reader never sees half a report.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._cases_path = self.path.with_name(self.path.name + ".cases")
        self._cases = open(self._cases_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.tests = 0
        self.failures = 0
        self._started = time.time()

    def add(self, result: FetchResult) -> None:
        self.tests += 1
        name = result.url if result.id is NO_ID else _id_text(result.id)
        host = urlsplit(result.url).hostname or "afetch"
        head = (
            f"    <testcase name={_xml_attr(name)} classname={_xml_attr(host)} "
            f'time="{result.elapsed_ms / 1000:.3f}"'
        )
        if result.ok:
            self._cases.write(head + "/>\n")
            return
        self.failures += 1
        kind = result.error.kind.value if result.error else "http"
        message = result.error.message if result.error else ""
        details = "\n".join(result.failed) or message
        self._cases.write(
            f"{head}>\n      <failure type={_xml_attr(kind)} message={_xml_attr(message)}>"
            f"{_xml_text(details)}</failure>\n    </testcase>\n"
        )

    def close(self) -> None:
        self._cases.close()
        seconds = time.time() - self._started
        stamp = datetime.fromtimestamp(self._started, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        suite = (
            f'<testsuite name="afetch" tests="{self.tests}" failures="{self.failures}" '
            f'errors="0" skipped="0" time="{seconds:.3f}" timestamp="{stamp}">'
        )
        partial = self.path.with_name(self.path.name + ".tmp")
        with open(partial, "w", encoding="utf-8") as report:
            report.write('<?xml version="1.0" encoding="UTF-8"?>\n')
            report.write(
                f'<testsuites name="afetch" tests="{self.tests}" failures="{self.failures}" '
                f'errors="0" time="{seconds:.3f}">\n  {suite}\n'
            )
            with open(self._cases_path, encoding="utf-8") as cases:
                shutil.copyfileobj(cases, report)
            report.write("  </testsuite>\n</testsuites>\n")
        os.replace(partial, self.path)
        self._cases_path.unlink(missing_ok=True)


def _id_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
