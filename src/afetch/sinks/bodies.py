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

import os
import re
from pathlib import Path

from yarl import URL

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SLUG_MAX = 80


def file_name(index: int, url: URL) -> str:
    """The file name for one request's body."""
    segment = url.path.rstrip("/").rsplit("/", 1)[-1]
    slug = _UNSAFE.sub("_", f"{url.host or 'host'}-{segment}" if segment else url.host or "host")
    slug = slug.strip("._-")[:_SLUG_MAX] or "body"
    return f"{index:08d}-{slug}"


class BodyFile:
    """One body being saved; ``commit`` makes it visible under its final name."""

    def __init__(self, directory: Path, index: int, url: URL) -> None:
        self.path = directory / file_name(index, url)
        self._part = self.path.with_name(self.path.name + ".part")
        self._handle = open(self._part, "wb")  # noqa: SIM115 - closed by commit/discard

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)

    def commit(self) -> str:
        self._handle.close()
        os.replace(self._part, self.path)
        return str(self.path)

    def discard(self) -> None:
        self._handle.close()
        self._part.unlink(missing_ok=True)
