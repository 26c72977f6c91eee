"""``--resume`` and ``-o FILE`` before a run: the output opened, the done set read.

A resume is refused (exit 2, FILE untouched) when FILE was written from
another input or other request options: its fingerprint beside it says so
(``sinks/fingerprint.py``), or, without one, a recorded URL that is not the
input's. A fresh ``-o FILE`` run writes the fingerprint, so it can be
resumed safely later. The done set comes from ``sinks/resume.py``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

import click

from afetch.cli.streams import Streams

if TYPE_CHECKING:
    from afetch.config import Config, RunControl
    from afetch.sinks.resume import IndexBitmap


def prepare_output(
    output: str | None,
    config: Config,
    control: RunControl,
    sources: tuple[Sequence[str], Sequence[str]],
    env: Streams,
    force: bool,
) -> tuple[IO[bytes], IndexBitmap | None]:
    """Where records go, and (with --resume) the indices FILE already holds."""
    urls, inputs = sources
    _refuse_output_that_is_input(output, inputs)
    done = None
    if control.resume:
        if output is None or output == "-":
            raise click.UsageError("--resume needs -o FILE: the records to resume from")
        _check_resume(output, config, control, urls, inputs, force=force)
        done = _recorded(output)
    elif output is not None and output != "-":
        _keep_fingerprint(output, config, control, urls, inputs)
    return _open_output(output, env, append=control.resume), done


def _refuse_output_that_is_input(output: str | None, inputs: Sequence[str]) -> None:
    """``-i list.txt -o list.txt`` would empty the list before reading it."""
    if output in (None, "-") or not os.path.exists(output):
        return
    for path in inputs:
        with contextlib.suppress(OSError):
            if path != "-" and os.path.samefile(path, output):
                raise click.UsageError(f"-o {output} is also an input (-i {path})")


def _check_resume(
    output: str,
    config: Config,
    control: RunControl,
    urls: Sequence[str],
    inputs: Sequence[str],
    *,
    force: bool,
) -> None:
    """Refuse (exit 2, FILE untouched) to resume a run made from another input.

    Records with no fingerprint beside them (copied, or from an older afetch)
    are checked one by one: each recorded index's URL must be the input's.
    """
    from afetch.sinks.fingerprint import check_or_record, fingerprint, side_file

    try:
        if not force and not side_file(output).exists() and os.path.exists(output):
            _check_recorded_urls(output, config, control, urls, inputs)
        refusal = check_or_record(output, fingerprint(config, control, urls, inputs), force=force)
    except OSError as exc:
        raise click.UsageError(f"cannot resume {output}: {exc.strerror}") from exc
    if refusal is not None:
        click.echo(f"afetch: error: {refusal}", err=True)
        sys.exit(2)


def _check_recorded_urls(
    output: str, config: Config, control: RunControl, urls: Sequence[str], inputs: Sequence[str]
) -> None:
    from afetch.inputs import InputError, RequestParser
    from afetch.sinks.fingerprint import first_mismatch
    from afetch.sinks.resume import recorded_urls

    if "-" in inputs:
        return  # a pipe cannot be read twice: its records are trusted (README)
    parser = RequestParser(config, dedupe=control.dedupe)
    try:
        mismatch = first_mismatch(recorded_urls(output), parser, urls, inputs)
    except InputError:
        return  # the run itself reports an unreadable input
    if mismatch is not None:
        click.echo(
            f"afetch: error: --resume: {output} was not written from this input ({mismatch});"
            " resuming would mix two runs' indices. Use --resume-force to resume anyway,"
            " or a new -o FILE",
            err=True,
        )
        sys.exit(2)


def _keep_fingerprint(
    output: str, config: Config, control: RunControl, urls: Sequence[str], inputs: Sequence[str]
) -> None:
    """A fresh ``-o FILE`` run writes its fingerprint, so a later --resume can check it."""
    from afetch.sinks.fingerprint import fingerprint, keep

    try:
        keep(output, fingerprint(config, control, urls, inputs))
    except OSError as exc:
        # A missing or read-only folder is the output's problem, not its side file's.
        folder_ok = os.access(os.path.dirname(output) or ".", os.W_OK)
        failed = f"{output}.resume.json" if folder_ok else output
        raise click.UsageError(f"cannot write {failed}: {exc.strerror}") from exc


def _recorded(path: str) -> IndexBitmap:
    from afetch.sinks.resume import recorded_indices

    try:
        return recorded_indices(path)
    except OSError as exc:
        raise click.UsageError(f"cannot resume from {path}: {exc.strerror}") from exc


def _open_output(path: str | None, env: Streams, *, append: bool = False) -> IO[bytes]:
    if path is None or path == "-":
        if env.stdout is None:  # started with stdout closed (>&-): nowhere for records to go
            env.say(
                "afetch: error: cannot write records: standard output is closed;"
                " -o FILE writes them to a file"
            )
            sys.exit(1)
        return env.stdout
    try:
        return open(path, "ab" if append else "wb")
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror}") from exc
