"""Results → progress on stderr: a tqdm bar on a terminal, periodic lines elsewhere.

The bar shows a total when one is known (positional URLs; an input file's
request lines — not blank lines or comments — counted on a thread while
the run goes on, then narrowed to the run's shard, less what ``--resume``
found done and what ``--dedupe`` skipped), so it has a percentage, a rate
and an ETA, and counts ok, failed and running requests (being fetched,
at most ``-c``; not those read ahead and waiting). When
records go to the same terminal, the writer clears the bar around each
write (``pause``), so a record never shares a line with it. Forced on
where stderr is not a terminal (``--progress`` in CI logs), it prints one
plain line every few seconds instead of carriage returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from afetch.models import FetchResult

if TYPE_CHECKING:
    from tqdm import tqdm

#: Seconds between plain progress lines (stderr not a terminal).
LINE_EVERY = 5.0


class Progress:
    """Progress of one run; does nothing when disabled."""

    def __init__(
        self,
        stream: IO[str],
        *,
        enabled: bool,
        total: int | None = None,
        running: Callable[[], int] = lambda: 0,
        skipped: Callable[[], int] = lambda: 0,
        terminal: bool = False,
    ) -> None:
        self._stream = stream
        self._bar: tqdm[Any] | None = None
        self._running = running
        self._skipped = skipped  # requests the total counted that are never fetched (dedupe)
        self._skipped_seen = 0
        self.ok = self.failed = self.warned = 0
        self._started = self._last_line = time.monotonic()
        self._lines = enabled and not terminal  # is stderr a terminal: the caller knows
        self.total = total
        self._on = enabled
        if enabled and not self._lines:
            from tqdm import tqdm  # 10 ms of imports, paid only when the bar is shown

            self._bar = tqdm(
                total=total,
                file=stream,
                unit="req",
                dynamic_ncols=True,
                mininterval=0.2,
                leave=False,
            )

    @property
    def active(self) -> bool:
        return self._bar is not None or self._lines

    def set_total(self, total: int) -> None:
        """A total learnt during the run (an input file's lines, counted on a thread)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, result: FetchResult) -> None:
        if not self._on:
            return
        if result.ok:
            self.ok += 1
        elif result.warn:
            self.warned += 1
        else:
            self.failed += 1
        if self._bar is not None:
            if (skipped := self._skipped()) != self._skipped_seen and self.total is not None:
                self._skipped_seen = skipped
                self._bar.total = max(self.total - skipped, self.ok + self.failed + self.warned)
            self._bar.set_postfix_str(self._counts(), refresh=False)
            self._bar.update(1)
        elif self._lines and (now := time.monotonic()) - self._last_line >= LINE_EVERY:
            self._last_line = now
            self._print_line(now)

    @contextlib.contextmanager
    def pause(self) -> Iterator[None]:
        """Clear the bar while something else writes to its terminal, then redraw it."""
        bar = self._bar  # the writer's thread calls this: the bar may close meanwhile
        if bar is None:
            yield
            return
        with bar.external_write_mode():
            yield

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            self._print_line(time.monotonic())

    def _counts(self) -> str:
        warned = f", warned {self.warned}" if self.warned else ""
        return f"ok {self.ok}, failed {self.failed}{warned}, running {self._running()}"

    def _print_line(self, now: float) -> None:
        done = self.ok + self.failed + self.warned
        rate = done / max(now - self._started, 1e-9)
        of = f"/{self.total - self._skipped()}" if self.total else ""
        with contextlib.suppress(OSError, ValueError):
            print(f"afetch: {done}{of} done ({self._counts()}), {rate:.1f} req/s",
                  file=self._stream, flush=True)  # fmt: skip


def count_total(
    urls: Sequence[str], paths: Sequence[str], deliver: Callable[[int], None]
) -> threading.Thread | None:
    """The run's requests for the bar: positional URLs now, input files' request lines
    from a thread (``deliver`` must hand the number over to the event loop's thread)."""
    files = [path for path in paths if path != "-" and _is_regular(path)]
    if len(files) != len(paths):  # stdin or a pipe among the inputs: no total
        return None
    if not files:
        deliver(len(urls))
        return None

    def count() -> None:
        deliver(len(urls) + sum(request_lines(path) for path in files))

    thread = threading.Thread(target=count, name="afetch-count", daemon=True)
    thread.start()
    return thread


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode) and not path.endswith(".gz")
    except OSError:
        return False


#: A line that is a request: something other than blanks, and not a ``#`` comment.
_REQUEST_LINE = re.compile(
    rb"^[ \t\r\f\v]*(?:\xef\xbb\xbf)?[ \t\r\f\v]*(?!\xef\xbb\xbf)[^\s#]", re.MULTILINE
)


def request_lines(path: str) -> int:
    """How many lines of a file are requests (as the input stage will count them)."""
    count = 0
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        carry = b""
        while block := handle.read(1 << 20):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            carry = block[cut:]
            count += sum(1 for _ in _REQUEST_LINE.finditer(block, 0, cut))
        if carry:
            count += _REQUEST_LINE.match(carry) is not None
    return count


def share_of(total: int, shard: tuple[int, int] | None) -> int:
    """How many of indices 0..total-1 fall in ``--shard K/N``."""
    if shard is None:
        return total
    k, n = shard
    return max(0, (total - (k - 1) + n - 1) // n)
