"""One CLI run: inputs → engine → writer, progress and tally; signals; exit status.

Kept apart from cli.py so the command module imports no HTTP machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import IO

from afetch.config import Config, UiOptions
from afetch.engine import Engine
from afetch.inputs import InputError, read_requests
from afetch.models import FetchResult
from afetch.output import RecordWriter
from afetch.progress import Progress
from afetch.summary import ExitStatus, Tally, exit_status


def run(
    config: Config, ui: UiOptions, urls: Sequence[str], paths: Sequence[str], out: IO[bytes]
) -> ExitStatus:
    """Run to completion (or interruption) and return the exit status."""
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_run(config, ui, urls, paths, out))
    finally:
        if out is not sys.stdout.buffer:
            with contextlib.suppress(OSError):
                out.close()


def _loop_factory() -> type[asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (``afetch-cli[speed]``), asyncio's own loop otherwise."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    loop_class: type[asyncio.AbstractEventLoop] = uvloop.Loop
    return loop_class


class _Run:
    """The mutable state of one run that signal and pipe callbacks touch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.signal_status: ExitStatus | None = None

    def on_signal(self, status: ExitStatus) -> None:
        if self.signal_status is not None:
            os._exit(status)  # a second Ctrl-C: the user wants out now
        self.signal_status = status
        self.engine.stop()

    def on_output_failed(self) -> None:
        self.engine.stop()


async def _run(
    config: Config, ui: UiOptions, urls: Sequence[str], paths: Sequence[str], out: IO[bytes]
) -> ExitStatus:
    engine = Engine(config)
    state = _Run(engine)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, state.on_signal, ExitStatus.SIGINT)
    loop.add_signal_handler(signal.SIGTERM, state.on_signal, ExitStatus.SIGTERM)
    tally = Tally()
    progress = Progress(sys.stderr, enabled=ui.progress)
    writer = RecordWriter(out, on_broken=state.on_output_failed)

    def on_input_error(error: InputError) -> None:
        tally.input_errors += 1
        _warn(f"afetch: error: {error}")

    try:
        requests = read_requests(urls, paths, config, on_error=on_input_error)
        async for result in engine.results(requests):
            await writer.write(result.to_record())
            tally.add(result)
            progress.update(result)
            if ui.verbose and not result.ok:
                _log_failure(result)
    finally:
        progress.close()
        await writer.close()
    if isinstance(writer.error, BrokenPipeError):
        _silence_stdout(out)  # the reader left (| head): end quietly, like cat does
    elif writer.error is not None:
        _warn(f"afetch: error: cannot write records: {writer.error}")
    elif ui.summary:
        _warn(tally.render())
    return exit_status(
        tally,
        signal_status=state.signal_status,
        broken_pipe=isinstance(writer.error, BrokenPipeError),
        output_failed=writer.error is not None,
        exit_zero=ui.exit_zero,
    )


def _log_failure(result: FetchResult) -> None:
    kind = result.error.kind.value if result.error else "?"
    message = result.error.message if result.error else ""
    _warn(f"afetch: [{result.index}] {result.url}: {kind}: {message}")


def _warn(text: str) -> None:
    with contextlib.suppress(OSError):
        print(text, file=sys.stderr, flush=True)


def _silence_stdout(out: IO[bytes]) -> None:
    """After EPIPE, point stdout at /dev/null so Python's exit flush stays quiet."""
    if out is sys.stdout.buffer:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
