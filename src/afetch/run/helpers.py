"""``--workers auto``: worker processes an engine takes on while its own loop is saturated.

The engine stays the coordinator and keeps fetching its own share: it
reads and numbers the input, keeps the ledger, the order and the records.
Helpers are the ``--workers`` worker program (afetch.run.worker): a
request goes to one as its frame, its record comes back as a JSON line.
A helper that dies hands its requests back to the engine, which fetches
them itself. Nothing here is imported unless a run grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from afetch.config import Config
from afetch.errors import OutputFailure
from afetch.models import FetchResult
from afetch.pacing import PacingNotes
from afetch.run.processes import (
    FATAL,
    PACING,
    frame,
    reap,
    record_limit,
    signal_worker,
    spawn_worker,
    worker_lines,
)
from afetch.run.scheduler import Ticket

log = logging.getLogger("afetch")

#: A record came back: the engine settles its ticket and delivers it.
Deliver = Callable[[int, FetchResult], Awaitable[None]]
#: A helper died holding these requests: the engine fetches them itself.
Reclaim = Callable[[list[Ticket]], None]


@dataclass(slots=True)
class _Helper:
    process: asyncio.subprocess.Process
    share: int
    held: dict[int, Ticket]  # sent and not back, by index
    reader: asyncio.Task[None] | None = None
    dead: bool = False

    @property
    def room(self) -> int:
        """Requests it may take now: it fetches its share and queues as many again."""
        return 0 if self.dead else 2 * self.share - len(self.held)


class Helpers:
    """The engine's worker processes: requests out, records back, deaths handled."""

    def __init__(
        self,
        config: Config,
        emit_cancelled: bool,
        pacing: PacingNotes,
        deliver: Deliver,
        reclaim: Reclaim,
        stop: Callable[[], None],
    ) -> None:
        self._config = config
        self._emit_cancelled = emit_cancelled
        self._pacing = pacing
        self._deliver = deliver
        self._reclaim = reclaim
        self._stop = stop
        self._limit = record_limit(config)
        self._helpers: list[_Helper] = []
        self._input_closed = False
        self._halted = False
        #: Set when a helper has room again (a record came back).
        self.freed = asyncio.Event()
        #: What ends the run once the records are in: a helper's sink failed (a full
        #: disk under --output-dir), or reading a helper failed (a bug).
        self.failure: Exception | None = None

    def __len__(self) -> int:
        return len(self._helpers)

    @property
    def share(self) -> int:
        """The concurrency the helpers have between them."""
        return sum(helper.share for helper in self._helpers if not helper.dead)

    @property
    def running(self) -> int:
        return sum(min(len(helper.held), helper.share) for helper in self._helpers)

    async def add(self, share: int) -> None:
        process = await spawn_worker(self._config, share, self._emit_cancelled)
        helper = _Helper(process, share, {})
        self._helpers.append(helper)
        helper.reader = asyncio.create_task(self._read(helper))
        if self._input_closed:  # the input ended while it started
            assert process.stdin is not None
            process.stdin.close()
        if self._halted:
            signal_worker(process, signal.SIGTERM)

    def place(self, ticket: Ticket) -> bool:
        """Send the request to the helper with the most room; False if none has any."""
        helper = max(self._helpers, key=lambda h: h.room, default=None)
        if helper is None or helper.room <= 0:
            return False
        stdin = helper.process.stdin
        assert stdin is not None
        helper.held[ticket.spec.index] = ticket
        if not stdin.is_closing():  # else it is dying: its reader hands the ticket back
            stdin.write(frame(ticket.spec))
        return True

    def close_input(self) -> None:
        """No more requests: each helper finishes what it holds and exits."""
        self._input_closed = True
        for helper in self._helpers:
            assert helper.process.stdin is not None
            with contextlib.suppress(OSError):
                helper.process.stdin.close()

    def halt(self) -> None:
        """The run stops: helpers end what they fetch (``cancelled`` records) and exit."""
        self._halted = True
        for helper in self._helpers:
            signal_worker(helper.process, signal.SIGTERM)

    async def finish(self, abandon: bool = False) -> None:
        """Every helper's records read (``abandon``: none waited for) and every helper
        gone, killed if it does not exit."""
        readers = [helper.reader for helper in self._helpers if helper.reader is not None]
        try:
            if abandon:
                for reader in readers:
                    reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        finally:
            for helper in self._helpers:
                await reap(helper.process)

    async def _read(self, helper: _Helper) -> None:
        stdout = helper.process.stdout
        assert stdout is not None
        try:
            async for lines in worker_lines(stdout, self._limit):
                for line in lines:
                    if line.startswith(b'{"afetch_'):
                        self._note(orjson.loads(line))
                        continue
                    result = FetchResult.from_line(line + b"\n")
                    if helper.held.pop(result.index, None) is None:
                        continue  # a record for a request already handed back
                    self.freed.set()
                    await self._deliver(result.index, result)
        except Exception as exc:
            self.failure = self.failure or exc
            self._stop()
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(helper.process.wait(), 5)
            if helper.process.returncode != 0 or (helper.held and not self._halted):
                self._died(helper)

    def _note(self, message: dict[str, Any]) -> None:
        if PACING in message:
            self._pacing.absorb(message[PACING])
        if FATAL in message:
            self.failure = self.failure or OutputFailure(message[FATAL])
            self._stop()

    def _died(self, helper: _Helper) -> None:
        """It ended without being told to: its requests go back to the engine."""
        if self._halted and helper.process.returncode in (0, -signal.SIGTERM):
            return
        helper.dead = True
        lost = sorted(helper.held.values(), key=lambda ticket: ticket.seq)
        helper.held.clear()
        code = helper.process.returncode
        how = f"signal {-code}" if code is not None and code < 0 else f"status {code}"
        log.warning(
            "afetch: worker process %d died (%s): its %d requests in flight run again here",
            self._helpers.index(helper) + 1,
            how,
            len(lost),
        )
        self._reclaim(lost)
        self.freed.set()
