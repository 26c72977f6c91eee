"""One CLI run: inputs → afetch.stream → records, report, progress and tally; signals; exit status.

Kept apart from cli.py so the command module imports no HTTP machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import IO, Literal

from afetch.api import Stream, stream
from afetch.cli.streams import Streams
from afetch.config import Config, RunControl, UiOptions
from afetch.errors import OutputFailure
from afetch.inputs import InputError, RequestParser, read_requests
from afetch.inputs.select import selection
from afetch.limits import plan, raise_open_file_limit
from afetch.models import FetchResult
from afetch.redact import masked_argv
from afetch.run.loop import loop_factory
from afetch.run.scheduler import StopReason
from afetch.sinks.progress import Progress, count_total, share_of
from afetch.sinks.records import RecordWriter, silence_stdout
from afetch.sinks.reports import Baseline, Ending, Reports
from afetch.sinks.resume import IndexBitmap
from afetch.sinks.tally import Tally, n_requests
from afetch.sinks.verdict import ExitStatus


def run(
    config: Config,
    ui: UiOptions,
    control: RunControl,
    sources: tuple[Sequence[str], Sequence[str]],
    out: IO[bytes],
    env: Streams,
    done: IndexBitmap | None = None,
    baseline: Baseline | None = None,
) -> ExitStatus:
    """Run to completion (or interruption) and return the exit status.

    ``sources`` is (positional URLs, input paths); ``done`` holds the indices
    an earlier run recorded (``--resume``).
    """
    config = _fit_open_files(config, control.workers, env)
    before = signal.getsignal(signal.SIGINT)
    try:
        with env.messages(), asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(_Run(config, ui, control, out, env).main(sources, done, baseline))
    finally:
        # The loop puts back Python's KeyboardInterrupt when it closes; a Ctrl-C from
        # here to the exit gets what the program had before the run (__main__'s).
        if before is not None:
            signal.signal(signal.SIGINT, before)
        if not env.is_stdout(out):
            with contextlib.suppress(OSError):
                out.close()


def _fit_open_files(config: Config, workers: int | Literal["auto"], env: Streams) -> Config:
    """Raise the open-file limit; lower the concurrency (once, said) if it still does not fit.

    With ``auto`` the run starts as one process holding every connection; the
    worker processes it may take on later take their shares from it.
    """
    if workers == "auto":
        workers = 1
    budget = plan(config.concurrency, workers, raise_open_file_limit())
    if budget.note is not None:
        env.say(budget.note)
    concurrency = min(config.concurrency, budget.concurrency * max(1, workers))
    return replace(config, concurrency=concurrency, max_idle=budget.idle)


class _Run:
    """The state of one run that signal and pipe callbacks touch."""

    def __init__(
        self, config: Config, ui: UiOptions, control: RunControl, out: IO[bytes], env: Streams
    ) -> None:
        self.config, self.ui, self.control, self.out, self.env = config, ui, control, out, env
        self._warn = env.say
        self.signal_status: ExitStatus | None = None
        self.failure: str | None = None  # what ended the run with an error, said on stderr
        self.results: Stream | None = None
        self.reports: Reports | None = None
        self.input_errors = 0
        self.sources: tuple[Sequence[str], Sequence[str]] = ((), ())

    def on_signal(self, status: ExitStatus) -> None:
        if self.signal_status is not None:
            os._exit(status)  # a second Ctrl-C: the user wants out now
        self.signal_status = status
        self.stop()

    def stop(self) -> None:
        if self.results is not None:
            self.results.stop()

    def on_input_error(self, error: InputError) -> None:
        self.input_errors += 1
        self._warn(f"afetch: error: {error}")

    def on_report_failed(self) -> None:
        """The JUnit report cannot be written: the run ends, saying so once."""
        junit = self.reports.junit if self.reports is not None else None
        if junit is not None and junit.error is not None:
            self.failure = self.failure or str(junit.error)
        self.stop()

    async def main(
        self,
        sources: tuple[Sequence[str], Sequence[str]],
        done: IndexBitmap | None,
        baseline: Baseline | None,
    ) -> ExitStatus:
        self.sources = sources
        try:
            self.reports = reports = Reports(self.control, baseline, self.on_report_failed)
        except OutputFailure as exc:
            self._warn(f"afetch: error: {exc}")
            return ExitStatus.USAGE
        parser = RequestParser(self.config, dedupe=self.control.dedupe)
        requests = read_requests(
            *sources,
            parser,
            select=selection(self.control.shard, self.control.shard_key, done),
            on_error=self.on_input_error,
            stdin=self.env.open_stdin,
        )
        control = self.control
        self.results = results = stream(
            requests,
            self.config,
            ordered=control.ordered,
            # With --resume an interrupted request leaves no record: the next run fetches it.
            emit_cancelled=not control.resume,
            workers=control.workers,
            deadline=control.deadline,
            max_failures=control.max_failures,
            recheck=control.recheck,
            recheck_delay=control.recheck_delay,
        )
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.on_signal, ExitStatus.SIGINT)
        loop.add_signal_handler(signal.SIGTERM, self.on_signal, ExitStatus.SIGTERM)
        # The terminal went away (ssh dropped, window closed): stop as for SIGTERM, so
        # -o FILE ends with whole records and can be resumed. nohup still ignores it.
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            loop.add_signal_handler(signal.SIGHUP, self.on_signal, ExitStatus.SIGHUP)
        progress = Progress(
            self.env.stderr or io.StringIO(),  # disabled then: nothing is written
            enabled=self.ui.progress and self.env.stderr is not None,
            running=lambda: results.running,
            skipped=lambda: parser.duplicates,
            terminal=self.env.stderr_tty,
        )
        if progress.active and control.shard_key == "index":  # a host shard's share: unknown
            already = 0 if done is None else done.count

            def deliver(total: int) -> None:
                fetched = share_of(total, self.control.shard) - already
                loop.call_soon_threadsafe(progress.set_total, max(0, fetched))

            count_total(*sources, deliver)
        env = self.env
        same_terminal = progress.active and env.is_stdout(self.out) and env.stdout_tty
        writer = RecordWriter(
            self.out,
            on_broken=self.stop,
            around=progress.pause if same_terminal else contextlib.nullcontext,
        )
        try:
            async for result in results:
                await writer.write(result)
                reports.count(result)
                if reports.junit is not None:
                    await reports.junit.add(result)
                progress.update(result)
                if self.ui.verbose and not result.ok:
                    self._warn(_failure_line(result))
        except Exception as exc:  # the run layer failed: what finished is written, then say why
            self.failure = self.failure or str(exc) or type(exc).__name__
        finally:
            await writer.close()  # before the bar goes: writes clear it around themselves
            progress.close()
            try:
                await reports.close()
            except OutputFailure as exc:
                self.failure = self.failure or str(exc)
        reports.tally.duplicates = parser.duplicates
        reports.tally.pacing = results.pacing()
        reports.tally.input_errors = self.input_errors
        return self._finish(results, reports, writer.error)

    def _interrupted(self, unfinished: int, sources: tuple[Sequence[str], Sequence[str]]) -> str:
        """What Ctrl-C (or SIGTERM) left, and the exact command that finishes it."""
        said = f"afetch: interrupted: {n_requests(unfinished)} unfinished"
        if self.env.is_stdout(self.out):
            return f"{said} (cancelled records); -o FILE --resume makes a run resumable"
        left = "no record" if self.control.resume else "cancelled records"
        command = ["afetch", *masked_argv(sys.argv[1:], self.config.redaction)]
        if not self.control.resume:
            command.append("--resume")
        urls, paths = sources
        piped = "-" in paths or not (urls or paths)
        again = " (with the same standard input)" if piped else ""
        return f"{said} ({left}); to finish them{again}: {shlex.join(command)}"

    def _finish(
        self, results: Stream, reports: Reports, output_error: OSError | None
    ) -> ExitStatus:
        deadline_hit = results.stop_reason is StopReason.DEADLINE
        unfinished = results.unfinished
        end = reports.finish(
            Ending(
                unfinished=unfinished + results.deaths,
                deadline_hit=deadline_hit,
                signal_status=self.signal_status,
                output_error=output_error,
            ),
            self.ui,
        )
        try:
            for line in end.publish():
                self._warn(line)
        except OutputFailure as exc:
            self.failure = self.failure or str(exc)
        if isinstance(output_error, BrokenPipeError):
            silence_stdout()
        elif output_error is not None:
            self._warn(f"afetch: error: cannot write records: {output_error}")
        else:
            for line in self._run_lines(results, reports.tally, unfinished, deadline_hit):
                self._warn(line)
            for line in end.closing_lines():
                self._warn(line)
        return end.status(failed=output_error is not None or self.failure is not None)

    def _run_lines(
        self, results: Stream, tally: Tally, unfinished: int, deadline_hit: bool
    ) -> list[str]:
        """What only a run (not a rebuild) has to say: failures, limits, how to go on."""
        lines = []
        if self.failure is not None:
            lines.append(f"afetch: error: {self.failure}")
        if deadline_hit:
            lines.append(
                f"afetch: --deadline reached: {n_requests(unfinished, 'unfinished ')} cancelled"
            )
        if (limit := self.control.max_failures) and results.stop_reason is StopReason.MAX_FAILURES:
            lines.append(
                f"afetch: --max-failures reached ({n_requests(limit)}"
                f" not ok): stopped with {n_requests(unfinished)} unfinished"
            )
        if self.signal_status is not None:
            lines.append(self._interrupted(unfinished, self.sources))
        elif self.control.resume and unfinished:
            lines.append(
                f"afetch: {n_requests(unfinished)} unfinished (no record):"
                " run the same command again to fetch them"
            )
        nothing = not (tally.total or tally.input_errors or deadline_hit)
        if nothing and not self.control.resume and self.failure is None:
            lines.append("afetch: no requests in the input")
        return lines


def _failure_line(result: FetchResult) -> str:
    kind = result.error.kind.value if result.error else "?"
    message = result.error.message if result.error else ""
    return f"afetch: [{result.index}] {result.url}: {kind}: {message}"
