"""Results → a JUnit XML report (``--junit``), for CI test reporters."""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import orjson

from afetch.models import NO_ID, FetchResult

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
