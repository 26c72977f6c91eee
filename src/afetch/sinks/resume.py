"""``--resume``: which indices an earlier run already recorded in ``-o FILE``.

The file is repaired first (a line torn by a kill is cut off, so its index
is fetched again), then scanned in 1 MiB blocks with one regular expression
per block: every record line starts with ``{"index":N,`` because the index
is always the first key, and each such line must parse as a whole record to
count. Indices go into a bitmap (one bit each), so a
million records cost 125 KB, not a set of a million ints.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import orjson

_BLOCK = 1 << 20
_INDEX = re.compile(rb'^\{"index":(\d+),', re.MULTILINE)


class IndexBitmap:
    """A growable set of non-negative ints, one bit each."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, index: int) -> None:
        byte, bit = divmod(index, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        if not self._bits[byte] & (1 << bit):
            self._bits[byte] |= 1 << bit
            self.count += 1

    def __contains__(self, index: int) -> bool:
        byte, bit = divmod(index, 8)
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << bit))


def repair_torn_tail(path: str) -> int:
    """Cut a last line that has no newline (a write cut short by a kill); bytes removed."""
    with open(path, "r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            block = handle.read(end - start)
            if end == size and block.endswith(b"\n"):
                return 0
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                handle.truncate(keep)
                return size - keep
            end = start
        handle.truncate(0)
        return size


def recorded_indices(path: str) -> IndexBitmap:
    """Indices of the finished records in ``path`` (a missing file has none)."""
    done = IndexBitmap()
    if not os.path.exists(path):
        return done
    repair_torn_tail(path)
    for index, _ in _finished(path):
        done.add(index)
    return done


def recorded_urls(path: str) -> dict[int, str]:
    """Index → URL of the finished records in ``path``, read only (no repair).

    For records without a fingerprint beside them: each is checked against
    the input's request of the same index before anything is resumed.
    """
    return {index: record["url"] for index, record in _finished(path)}


def _finished(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as handle:
        carry = b""
        while block := handle.read(_BLOCK):
            block = carry + block
            cut = block.rfind(b"\n") + 1
            carry = block[cut:]
            for match in _INDEX.finditer(block, 0, cut):
                end = block.index(b"\n", match.end())
                index = int(match.group(1))
                record = _finished_record(block[match.start() : end], index)
                if record is not None:
                    yield index, record


#: Records that say the request was never answered: a resumed run fetches them again.
_UNFINISHED = frozenset({"cancelled", "skipped"})


def _finished_record(line: bytes, index: int) -> dict[str, Any] | None:
    """A whole, valid record of a finished request, or None.

    A garbage or half-written ``{"index":N,...`` line does not count, so its
    index is fetched again (orjson checks a line in a microsecond or two);
    nor does a ``cancelled`` or ``skipped`` record (Ctrl-C, the deadline,
    ``--max-host-errors``): the request was never answered.
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(record, dict) and record.get("index") == index and "ok" in record):
        return None
    error = record.get("error")
    if isinstance(error, dict) and error.get("type") in _UNFINISHED:
        return None
    return record
