"""Results → a JUnit XML report (``--junit``), for CI test reporters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import orjson

from afetch.errors import OutputFailure
from afetch.models import NO_ID, FetchResult
from afetch.sinks.records import ThreadedWriter

_XML_UNSAFE = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: str) -> str:
    return escape(_XML_UNSAFE.sub("\ufffd", value))


def _xml_attr(value: str) -> str:
    return quoteattr(_XML_UNSAFE.sub("\ufffd", value))


class JUnitReport:
    """A JUnit XML report: one ``<testcase>`` per record, complete and well-formed at close.

    Test cases are streamed to a side file as records arrive (constant memory
    for any number of records), written by a thread with back-pressure like
    the records; ``close`` writes the ``<testsuite>`` header, whose counts are
    known only at the end, then the cases, into a temporary file (on a
    thread too) that is renamed over PATH, so a reader never sees half a
    report. A report that cannot be written is an ``OutputFailure``.
    """

    def __init__(self, path: str, on_broken: Callable[[], None] | None = None) -> None:
        """Opens the side file at once: a path that cannot be written fails before the run."""
        self.path = Path(path)
        self._cases_path = self.path.with_name(self.path.name + ".cases")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._cases = open(self._cases_path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise self._failure(exc) from exc
        self._writer = ThreadedWriter(self._cases, on_broken=on_broken, name="afetch-junit")
        self.tests = 0
        self.failures = 0
        self._started = time.time()

    @property
    def error(self) -> OutputFailure | None:
        """Set once a write failed (the run is told through ``on_broken``)."""
        return None if self._writer.error is None else self._failure(self._writer.error)

    async def add(self, result: FetchResult) -> None:
        self.tests += 1
        if not result.ok:
            self.failures += 1
        await self._writer.write_bytes(_case(result).encode())

    async def close(self) -> None:
        await self._writer.close()
        try:
            if self._writer.error is not None:
                with contextlib.suppress(OSError):  # what is left in its buffer fails again
                    self._cases.close()
                raise self._writer.error
            self._cases.close()
            await asyncio.to_thread(self._assemble, time.time() - self._started)
        except OSError as exc:
            self._cases_path.unlink(missing_ok=True)
            raise self._failure(exc) from exc

    def _assemble(self, seconds: float) -> None:
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

    def _failure(self, exc: OSError) -> OutputFailure:
        return OutputFailure(f"--junit {self.path}: {exc.strerror or exc}")


def _case(result: FetchResult) -> str:
    """One ``<testcase>`` element."""
    name = result.url if result.id is NO_ID else _id_text(result.id)
    host = urlsplit(result.url).hostname or "afetch"
    head = (
        f"    <testcase name={_xml_attr(name)} classname={_xml_attr(host)} "
        f'time="{result.elapsed_ms / 1000:.3f}"'
    )
    if result.ok:
        return head + "/>\n"
    kind = result.error.kind.value if result.error else "http"
    message = result.error.message if result.error else ""
    details = "\n".join(result.failed) or message
    return (
        f"{head}>\n      <failure type={_xml_attr(kind)} message={_xml_attr(message)}>"
        f"{_xml_text(details)}</failure>\n    </testcase>\n"
    )


def _id_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
