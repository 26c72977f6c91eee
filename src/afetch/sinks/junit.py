"""Results → a JUnit XML report (``--junit``), for CI test reporters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import orjson

from afetch.errors import ErrorKind, OutputFailure
from afetch.models import NO_ID, FetchResult
from afetch.sinks.records import ThreadedWriter, silence_stdout

_XML_UNSAFE = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: str) -> str:
    return escape(_XML_UNSAFE.sub("\ufffd", value))


def _xml_attr(value: str) -> str:
    return quoteattr(_XML_UNSAFE.sub("\ufffd", value))


class JUnitReport:
    """A JUnit XML report: one ``<testcase>`` per record, in input order, well-formed at close.

    How CI tools read it: a network error is an ``<error>``, a missed
    expectation a ``<failure>``, a cancelled or skipped request
    ``<skipped>``; URL, status and final URL are ``<properties>`` of the
    case, whatever its name. Test cases are streamed to a side file as
    records arrive, written by a thread with back-pressure like the records;
    only three numbers per case stay in memory (index, offset, length), so
    ``close`` can copy them in input order — completion order changes from
    run to run. ``close`` writes the ``<testsuite>`` header, whose counts are
    known only at the end, then the cases, into a temporary file (on a
    thread) that is renamed over PATH, so a reader never sees half a report.
    A report that cannot be written is an ``OutputFailure``.
    """

    def __init__(self, path: str, on_broken: Callable[[], None] | None = None) -> None:
        """Opens the side file at once: a path that cannot be written fails before the run."""
        self.path = Path(path)
        self._to_stdout = path == "-"  # records went to -o FILE (or none: --report)
        try:
            if self._to_stdout:
                handle, cases = tempfile.mkstemp(prefix="afetch-junit-", suffix=".cases")
                os.close(handle)
                self._cases_path = Path(cases)
            else:
                self._cases_path = self.path.with_name(self.path.name + ".cases")
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._cases = open(self._cases_path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise self._failure(exc) from exc
        self._writer = ThreadedWriter(self._cases, on_broken=on_broken, name="afetch-junit")
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        self._places = array("q")  # index, offset, length of each case in the side file
        self._offset = 0
        self._started = time.time()
        #: The suite's time: the run's wall time, or (set by a rebuild) the records' own.
        self.seconds: float | None = None

    @property
    def error(self) -> OutputFailure | None:
        """Set once a write failed (the run is told through ``on_broken``)."""
        return None if self._writer.error is None else self._failure(self._writer.error)

    async def add(self, result: FetchResult) -> None:
        outcome = _outcome(result)
        self.counts["tests"] += 1
        if outcome is not None:
            self.counts[_COUNTED[outcome[0]]] += 1
        case = _case(result, outcome).encode()
        self._places.extend((result.index, self._offset, len(case)))
        self._offset += len(case)
        await self._writer.write_bytes(case)

    async def close(self) -> None:
        await self._writer.close()
        try:
            if self._writer.error is not None:
                with contextlib.suppress(OSError):  # what is left in its buffer fails again
                    self._cases.close()
                raise self._writer.error
            self._cases.close()
            seconds = time.time() - self._started if self.seconds is None else self.seconds
            await asyncio.to_thread(self._assemble, seconds)
        except OSError as exc:
            self._cases_path.unlink(missing_ok=True)
            raise self._failure(exc) from exc

    def _assemble(self, seconds: float) -> None:
        stamp = datetime.fromtimestamp(self._started, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        counts = " ".join(f'{name}="{value}"' for name, value in self.counts.items())
        head = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuites name="afetch" {counts} time="{seconds:.3f}">\n'
            f'  <testsuite name="afetch" {counts} time="{seconds:.3f}"'
            f' timestamp="{stamp}">\n'.encode()
        )
        if self._to_stdout:
            try:
                self._write(sys.stdout.buffer, head)
            except BrokenPipeError:
                silence_stdout()  # | head left: quietly, as with records
        else:
            partial = self.path.with_name(self.path.name + ".tmp")
            with open(partial, "wb") as report:
                self._write(report, head)
            os.replace(partial, self.path)
        self._cases_path.unlink(missing_ok=True)

    def _write(self, report: IO[bytes], head: bytes) -> None:
        """The suite: its header, then the cases from the side file in input order."""
        places = self._places
        order = sorted(range(0, len(places), 3), key=places.__getitem__)
        with open(self._cases_path, "rb") as cases:
            report.write(head)
            for at in order:
                cases.seek(places[at + 1])
                report.write(cases.read(places[at + 2]))
            report.write(b"  </testsuite>\n</testsuites>\n")
            report.flush()

    def _failure(self, exc: OSError) -> OutputFailure:
        return OutputFailure(f"--junit {self.path}: {exc.strerror or exc}")


#: What each kind of outcome is counted as in the suite's attributes.
_COUNTED = {"failure": "failures", "error": "errors", "skipped": "skipped"}
_NOT_RUN = (ErrorKind.CANCELLED, ErrorKind.SKIPPED)


def _outcome(result: FetchResult) -> tuple[str, str, str, str] | None:
    """(element, type, message, details) for a record that is not ok; None when it is."""
    if result.ok:
        return None
    kind = result.error.kind if result.error else ErrorKind.HTTP
    message = result.error.message if result.error else "; ".join(result.failed)
    details = "\n".join(result.failed) or message
    if kind in _NOT_RUN:
        return "skipped", kind.value, message, details
    if result.warn:  # --warn-on: reported, not failing the suite
        return "skipped", kind.value, f"warning ({kind.value}): {message}", details
    if kind is ErrorKind.HTTP:  # a response came and missed what was expected of it
        return "failure", kind.value, message, details
    return "error", kind.value, message, details


def _case(result: FetchResult, outcome: tuple[str, str, str, str] | None) -> str:
    """One ``<testcase>`` element."""
    name = result.url if result.id is NO_ID else _id_text(result.id)
    host = urlsplit(result.url).hostname or "afetch"
    properties = [("url", result.url)]
    if result.status is not None:
        properties.append(("status", str(result.status)))
    if result.final_url is not None:
        properties.append(("final_url", result.final_url))
    lines = [
        f"    <testcase name={_xml_attr(name)} classname={_xml_attr(host)} "
        f'time="{result.elapsed_ms / 1000:.3f}">',
        "      <properties>",
        *(
            f"        <property name={_xml_attr(key)} value={_xml_attr(value)}/>"
            for key, value in properties
        ),
        "      </properties>",
    ]
    if result.flaky:  # Maven Surefire's rerun format: a passing case that failed first
        lines.append(
            f'      <flakyFailure message="failed, then passed on --recheck"'
            f' type="flaky">attempts: {result.attempts}</flakyFailure>'
        )
    if outcome is not None:
        element, kind, message, details = outcome
        lines.append(
            f"      <{element} type={_xml_attr(kind)} message={_xml_attr(message)}>"
            f"{_xml_text(details)}</{element}>"
        )
    lines.append("    </testcase>\n")
    return "\n".join(lines)


def _id_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
