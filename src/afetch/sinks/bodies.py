"""Bodies → files under ``--output-dir``: safe, collision-free names, written as they stream.

A name is the zero-padded input index plus a slug of the URL's host and last
path segment (``00000042-example.com-report.pdf``): the index makes it unique
within a run, the slug makes it readable, and only ``[A-Za-z0-9._-]`` survive,
so no URL path, ``..`` or Content-Disposition header can place a file
outside the directory. A body is written to ``NAME.part`` and renamed when
complete, so a file without ``.part`` is always a whole body (or the first
``--max-body`` bytes, as the record's ``truncated`` says).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from yarl import URL

from afetch.errors import OutputFailure

_T = TypeVar("_T")
#: Bytes gathered before a write goes to a thread: one hop per piece, not per chunk.
_PIECE = 256 * 1024

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SLUG_MAX = 80


def file_name(index: int, url: URL) -> str:
    """The file name for one request's body."""
    segment = url.path.rstrip("/").rsplit("/", 1)[-1]
    slug = _UNSAFE.sub("_", f"{url.host or 'host'}-{segment}" if segment else url.host or "host")
    slug = slug.strip("._-")[:_SLUG_MAX] or "body"
    return f"{index:08d}-{slug}"


class BodyFile:
    """One body being saved; ``commit`` makes it visible under its final name.

    Disk work runs on threads (``asyncio.to_thread``), a piece of at least
    ``_PIECE`` bytes at a time, awaited: a slow disk slows this request's
    reading (back-pressure), never the event loop. A failure to write is an
    ``OutputFailure``, which ends the run with one message.
    """

    def __init__(self, path: Path, handle: io.FileIO) -> None:
        self.path = path
        self._part = path.with_name(path.name + ".part")
        self._handle = handle
        self._pending: list[bytes] = []
        self._pending_size = 0

    @classmethod
    async def open(cls, directory: Path, index: int, url: URL) -> BodyFile:
        """Created here on the loop (one quick system call): a stop cannot leave a
        ``.part`` made by a thread that nobody will discard."""
        path = directory / file_name(index, url)
        part = path.with_name(path.name + ".part")
        try:
            handle = io.FileIO(part, "wb")
        except OSError as exc:
            raise _failure(path, exc) from exc
        return cls(path, handle)

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= _PIECE:
            await self._flush()

    async def commit(self) -> str:
        """The last piece written, then the file renamed — or no file at all.

        The close and the rename run here on the loop (each a quick system
        call), so a stop cannot land between a complete file and its record:
        a body is either saved and recorded, or cancelled and gone.
        """
        try:
            await self._flush()
            self._finish()
        except BaseException:
            self.discard()
            raise
        return str(self.path)

    def discard(self) -> None:
        """Drop the partial file (on failure or cancellation: quick, and cannot wait)."""
        self._handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self._part)

    async def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            await _on_thread(self.path, self._handle.write, data)

    def _finish(self) -> None:
        try:
            self._handle.close()
            os.replace(self._part, self.path)
        except OSError as exc:
            raise _failure(self.path, exc) from exc


async def _on_thread(path: Path, call: Callable[..., _T], *args: object, **kwargs: object) -> _T:
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except OSError as exc:
        raise _failure(path, exc) from exc


def _failure(path: Path, exc: OSError) -> OutputFailure:
    reason = exc.strerror or str(exc)
    return OutputFailure(f"--output-dir {path.parent}: cannot write {path.name}: {reason}")
