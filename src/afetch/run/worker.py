"""A ``--workers`` fetch process: requests in on stdin, records out on stdout.

Started by afetch.run.processes with ``python -m afetch.run.worker``. Stdin
starts with the run's Config, pickled, after a line giving its length; then
come requests, each framed the same way (``processes.frame``): its source,
parsed exactly as the coordinator parsed it, or a caller's FetchSpec.
Records go out as JSON lines. SIGINT is ignored (a terminal's Ctrl-C reaches
the whole process group; the coordinator decides); SIGTERM stops the engine,
which writes ``cancelled`` records for what it interrupts (none with
--resume), as in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import sys
from collections.abc import AsyncIterator
from typing import IO

import orjson

from afetch.config import Config
from afetch.errors import OutputFailure
from afetch.inputs import RequestParser
from afetch.models import FetchResult, FetchSpec
from afetch.run.engine import Engine
from afetch.run.loop import loop_factory, tune_gc
from afetch.run.processes import FATAL, PACING
from afetch.run.scheduler import RunLimits
from afetch.sinks.records import RecordWriter

NON_STR = orjson.OPT_NON_STR_KEYS  # statuses are the keys of the pacing notes


async def _requests(
    parser: RequestParser, requests_in: IO[str]
) -> AsyncIterator[FetchSpec | FetchResult]:
    """Requests as the coordinator frames them (afetch.run.processes.frame)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), requests_in)
    while header := await reader.readline():
        pickled = header.startswith(b"p")
        try:
            payload = await reader.readexactly(int(header[1:] if pickled else header))
        except asyncio.IncompleteReadError:
            return  # the coordinator went away mid-frame
        if pickled:  # a library caller's own FetchSpec
            yield pickle.loads(payload)
            continue
        index, is_line, text = orjson.loads(payload)
        parser.next_index = index
        item = parser.parse(text.encode()) if is_line else parser.parse_argument(text)
        if item is not None:
            yield item


async def _serve(
    config: Config, emit_cancelled: bool, requests_in: IO[str], records_out: IO[bytes]
) -> None:
    engine = Engine(config, RunLimits(emit_cancelled=emit_cancelled))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, engine.stop)
    # The coordinator reads this pipe to the end: its going away is a crash, seen there.
    writer = RecordWriter(records_out, on_broken=engine.stop, watch_reader=False)
    try:
        async for result in engine.results(_requests(RequestParser(config), requests_in)):
            await writer.write(result)
    except OutputFailure as exc:  # after the records that finished: the coordinator says it
        await writer.close()
        records_out.write(orjson.dumps({FATAL: str(exc)}) + b"\n")
        records_out.flush()
        return
    finally:
        await writer.close()
    if engine.pacing.hosts:  # the coordinator's summary tells how hosts were paced
        with contextlib.suppress(OSError):
            records_out.write(orjson.dumps({PACING: engine.pacing.hosts}, option=NON_STR) + b"\n")
            records_out.flush()


def main() -> None:
    """The worker program: its standard streams are its pipes to the coordinator."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal: the coordinator decides
    _end_with_coordinator()
    requests_in, records_out = sys.stdin, sys.stdout.buffer
    config, emit_cancelled = pickle.loads(_read_config(requests_in.fileno()))
    if config.tls_options is not None:
        config = _with_tls(config)
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(config, emit_cancelled, requests_in, records_out))


def _end_with_coordinator() -> None:
    """SIGTERM when the coordinator dies (``kill -9``): no fetching for a reader gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # it died before the call
        raise SystemExit(0)


def _read_config(fd: int) -> bytes:
    """The pickled Config, read straight from the descriptor (no read-ahead)."""
    header = b""
    while not header.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise SystemExit(0)  # the coordinator went away before sending anything
        header += byte
    size, blob = int(header), b""
    while len(blob) < size:
        chunk = os.read(fd, size - len(blob))
        if not chunk:
            raise SystemExit(0)
        blob += chunk
    return blob


def _with_tls(config: Config) -> Config:
    from dataclasses import replace

    assert config.tls_options is not None
    return replace(config, tls=config.tls_options.context())


if __name__ == "__main__":
    main()
