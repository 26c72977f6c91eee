"""The standard streams, decided once per run and passed down (httpie's ``Environment``).

cron and daemons start programs with fd 0, 1 or 2 closed (``<&-``, ``>&-``,
``2>&-``). A closed fd is the lowest free number, so the first socket or
file afetch opened became "stdin" or "stdout": uvloop aborted closing such
a socket, records could land in a connection, and Python left ``sys.std*``
as None for seven places to disagree about. At start-up each closed one is
pointed at ``/dev/null`` (:func:`repair_closed`) and remembered as closed,
so the rest of the program sees ordinary streams and messages say what is
really wrong.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

#: The standard fds that were closed when the process started (0, 1, 2).
_closed_at_start: frozenset[int] = frozenset()


def repair_closed() -> frozenset[int]:
    """Point every closed fd among 0-2 at /dev/null, before anything else opens a file."""
    global _closed_at_start
    closed = frozenset(fd for fd in (0, 1, 2) if not _is_open(fd))
    for fd in sorted(closed):
        spare = os.open(os.devnull, os.O_RDWR)  # the lowest free fd: usually fd itself
        if spare != fd:
            os.dup2(spare, fd)
            os.close(spare)
    if 0 in closed and sys.stdin is None:
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115  # lives as long as the process
    if 1 in closed and sys.stdout is None:
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    if 2 in closed and sys.stderr is None:
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    _closed_at_start = _closed_at_start | closed
    return closed


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Streams:
    """Where a run reads stdin, writes records and talks to the person, and what each is."""

    stdin: IO[str] | None
    stdout: IO[bytes] | None  # None: closed at start-up, records have nowhere to go
    stderr: IO[str] | None  # None: closed at start-up, messages are dropped
    stdin_closed: bool
    stdin_tty: bool
    stdout_tty: bool
    stderr_tty: bool

    @classmethod
    def current(cls) -> Streams:
        """The process's streams now (click's test runner swaps them per invocation)."""
        closed = _closed_at_start
        stdin = None if 0 in closed else sys.stdin
        stdout = None if 1 in closed or sys.stdout is None else _binary(sys.stdout)
        stderr = None if 2 in closed else sys.stderr
        return cls(
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            stdin_closed=stdin is None,
            stdin_tty=stdin is not None and isatty(stdin),
            stdout_tty=stdout is not None and isatty(stdout),
            stderr_tty=stderr is not None and isatty(stderr),
        )

    def open_stdin(self) -> tuple[Callable[[int], bytes], Callable[[], None]]:
        """Standard input for ``-i -``: ``(read, close)``, one system call per read.

        Read through its raw descriptor, not ``sys.stdin.buffer``: a daemon thread
        blocked inside a buffered reader's lock makes interpreter shutdown abort.
        """
        if self.stdin is None:
            raise OSError("standard input is closed")
        try:
            raw = open(self.stdin.fileno(), "rb", buffering=0, closefd=False)  # noqa: SIM115
        except (AttributeError, OSError, ValueError):  # a stand-in stdin with no descriptor
            buffer: IO[bytes] = self.stdin.buffer  # type: ignore[attr-defined]
            return buffer.read, lambda: None
        return raw.read, raw.close

    def stdin_bytes(self) -> IO[bytes]:
        """Standard input as one binary stream (``afetch --report -``)."""
        if self.stdin is None:
            raise OSError("standard input is closed")
        buffer: IO[bytes] = self.stdin.buffer  # type: ignore[attr-defined]
        return buffer

    @contextlib.contextmanager
    def messages(self) -> Iterator[None]:
        """The library's messages (the ``afetch`` logger: a worker process died, a jq
        expression that is not a test) go to this stderr, and only there, meanwhile."""
        logger = logging.getLogger("afetch")
        handler = _Say(self.say)
        logger.addHandler(handler)
        propagate, logger.propagate = logger.propagate, False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate

    def say(self, text: str) -> None:
        """A line for the person on stderr; dropped when stderr is closed or fails."""
        if self.stderr is None:
            return
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.stderr, flush=True)

    def is_stdout(self, out: IO[bytes]) -> bool:
        return self.stdout is not None and out is self.stdout


class _Say(logging.Handler):
    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._say = say

    def emit(self, record: logging.LogRecord) -> None:
        self._say(record.getMessage())


def flush_and_say(message: object | None = None) -> None:
    """At exit: say a message SystemExit carried, flush stdout and stderr (if open)."""
    if message is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            print(message, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with it closed
            continue
        with contextlib.suppress(OSError, ValueError):  # a reader that left, a closed stream
            stream.flush()


def _binary(stream: IO[str]) -> IO[bytes] | None:
    buffer: IO[bytes] | None = getattr(stream, "buffer", None)
    return buffer


def isatty(stream: IO[Any]) -> bool:
    """Whether a stream is a terminal (False for closed or fake streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
