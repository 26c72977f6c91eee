"""The reports a run's results feed besides the records: tally, JUnit, Markdown, GitHub, baseline.

One bundle, used alike by a run and by ``afetch --report`` (reports rebuilt
from saved records), so both judge and write exactly the same way.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import orjson

from afetch.config import RunControl, UiOptions
from afetch.errors import OutputFailure
from afetch.models import FetchResult, check_name
from afetch.sinks.markdown import RunReport, append_step_summary
from afetch.sinks.records import silence_stdout
from afetch.sinks.summary import closing_lines
from afetch.sinks.tally import Tally
from afetch.sinks.verdict import BaselineDiff, ExitStatus, Verdict, exit_status, judge, run_passed

if TYPE_CHECKING:
    from afetch.sinks.junit import JUnitReport


class BadRecords(ValueError):
    """A records file that cannot be read, or a line that is not an afetch record."""


def read_records(path: str, stdin: Callable[[], IO[bytes]] | None = None) -> Iterator[FetchResult]:
    """The records of one file (``-``: standard input, as ``stdin`` opens it)."""
    try:
        if path == "-":
            if stdin is None:
                raise OSError(0, "no standard input was given to read")
            handle = stdin()
        else:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BadRecords(f"{path}: {exc.strerror}") from exc
    with contextlib.nullcontext() if path == "-" else handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield FetchResult.from_line(line)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise BadRecords(f"{path}:{number}: not an afetch record ({exc})") from None


def latest_records(
    paths: Sequence[str], stdin: Callable[[], IO[bytes]] | None = None
) -> tuple[list[FetchResult], int]:
    """One record per check across files: the last one read for an index and URL wins.

    A resumed run appends a new record for an index it fetched again (a
    cancelled one), and two runs of the same list name the same checks;
    the count of records replaced is the second value.
    """
    latest: dict[tuple[int, str], FetchResult] = {}
    read = 0
    for path in paths:
        for result in read_records(path, stdin):
            latest[result.index, result.url] = result
            read += 1
    return list(latest.values()), read - len(latest)


class Baseline:
    """``--baseline FILE``: which checks failed in an earlier run's records."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self._now_failing: set[str] = set()
        self._now_ok: set[str] = set()

    @classmethod
    def load(cls, path: str) -> Baseline:
        """Read a records file (``BadRecords`` for the CLI's usage error)."""
        records, _ = latest_records([path])
        return cls({check_name(r) for r in records if not (r.ok or r.warn)})

    def add(self, result: FetchResult) -> None:
        passing = result.ok or result.warn  # a warning is not a failure to compare
        (self._now_ok if passing else self._now_failing).add(check_name(result))

    def diff(self) -> BaselineDiff:
        return BaselineDiff(
            new=sorted(self._now_failing - self.failing),
            still=sorted(self._now_failing & self.failing),
            fixed=sorted((self._now_ok - self._now_failing) & self.failing),
        )


class Reports:
    """Tally, and whichever of JUnit, Markdown, GitHub and baseline the run asked for."""

    def __init__(
        self,
        control: RunControl,
        baseline: Baseline | None = None,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        """Opens the JUnit side file at once (an ``OutputFailure`` before anything runs)."""
        self.control = control
        self.tally = Tally()
        self.tally.judges_latency = control.thresholds.max_p95_ms is not None
        self.baseline = baseline
        self.junit: JUnitReport | None = None
        if control.junit:
            from afetch.sinks.junit import JUnitReport  # xml and datetime only when asked for

            self.junit = JUnitReport(control.junit, on_broken=on_broken)
        wants_report = control.markdown is not None or control.github
        self.report = RunReport() if wants_report else None

    def count(self, result: FetchResult) -> None:
        """The reports that need no writing (``junit.add`` is awaited by the caller)."""
        self.tally.add(result)
        if self.report is not None:
            self.report.add(result)
        if self.baseline is not None:
            self.baseline.add(result)

    async def add(self, result: FetchResult) -> None:
        self.count(result)
        if self.junit is not None:
            await self.junit.add(result)

    async def close(self) -> None:
        """Finish the JUnit report (raises ``OutputFailure``)."""
        if self.junit is not None:
            await self.junit.close()

    def finish(self, ending: Ending, ui: UiOptions) -> RunEnd:
        """The one end of a run, and of ``afetch --report``: judged once, said once."""
        return RunEnd(self, ending, ui)

    def verdicts(self) -> list[Verdict]:
        diff = None if self.baseline is None else self.baseline.diff()
        return judge(self.tally, self.control.thresholds, baseline=diff)

    def publish(self, verdicts: list[Verdict], passed: bool) -> list[str]:
        """Write the Markdown report and GitHub's summary; the lines for stderr."""
        if self.report is None:
            return []
        diff = None if self.baseline is None else self.baseline.diff()
        text = self.report.render(self.tally, verdicts, passed, diff)
        said = []
        if self.control.markdown is not None:
            try:
                if self.control.markdown == "-":  # records went to -o FILE (or none: --report)
                    _to_stdout(text.encode())
                else:
                    path = Path(self.control.markdown)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise OutputFailure(f"--markdown {self.control.markdown}: {exc.strerror}") from exc
        if self.control.github:
            if (problem := append_step_summary(text)) is not None:
                said.append(f"afetch: --github: {problem}")
            said += self.report.annotations()
        return said


def _to_stdout(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        silence_stdout()  # | head left: quietly, as with records


@dataclass(frozen=True, slots=True)
class Ending:
    """How a run ended, beside its records (a rebuild from records ends plainly)."""

    unfinished: int = 0  # requests read but not finished (deadline, signals, dead workers)
    deadline_hit: bool = False
    signal_status: ExitStatus | None = None
    output_error: OSError | None = None


class RunEnd:
    """The verdict, the reports people read, the closing lines and the exit status.

    ``passed`` is what the reports say (``--exit-zero`` never changes it); a
    run cut short by a signal or a reader that left did not pass.
    """

    def __init__(self, reports: Reports, ending: Ending, ui: UiOptions) -> None:
        self._reports, self._ending, self._ui = reports, ending, ui
        self.verdicts = reports.verdicts()
        judged = run_passed(
            reports.tally,
            self.verdicts,
            unfinished=ending.unfinished,
            deadline_hit=ending.deadline_hit,
        )
        self.passed = judged and ending.signal_status is None and ending.output_error is None

    def publish(self) -> list[str]:
        """Write the Markdown report and GitHub's summary (``OutputFailure``); lines to say."""
        return self._reports.publish(self.verdicts, self.passed)

    def closing_lines(self) -> list[str]:
        ui = self._ui
        return closing_lines(
            self._reports.tally, self.verdicts, summary=ui.summary, colour=ui.color
        )

    def status(self, *, failed: bool = False) -> ExitStatus:
        """The exit status; ``failed``: the run itself failed (a sink, its input, its output)."""
        ending = self._ending
        return exit_status(
            self._reports.tally,
            signal_status=ending.signal_status,
            broken_pipe=isinstance(ending.output_error, BrokenPipeError),
            output_failed=failed,
            exit_zero=self._ui.exit_zero,
            deadline_hit=ending.deadline_hit,
            unfinished=ending.unfinished,
            verdicts=self.verdicts,
        )
