"""A response head's fields: decoded only as far as they are read; obs-fold undone."""

from __future__ import annotations

import re
from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

from afetch.http.request import text_of

_FOLD = re.compile(rb"\r\n[ \t]+")


class Headers:
    """Response headers, decoded only as far as they are read.

    The few fields afetch reads of every response are picked out while
    parsing; the full case-insensitive multidict is built only when all
    fields are asked for (``--headers``, header expectations).
    """

    __slots__ = ("_all", "_fields", "_known", "rate_limit")

    #: afetch.ratelimit reads these of every response; ``rate_limit`` says if any came.
    _RATE_LIMIT = frozenset(
        {
            b"ratelimit",
            b"ratelimit-policy",
            b"ratelimit-limit",
            b"ratelimit-remaining",
            b"ratelimit-reset",
            b"ratelimit-reset-after",
            b"x-ratelimit-limit",
            b"x-ratelimit-remaining",
            b"x-ratelimit-reset",
            b"x-ratelimit-reset-after",
        }
    )
    _KNOWN = (
        frozenset(
            {
                b"content-type",
                b"content-length",
                b"content-encoding",
                b"transfer-encoding",
                b"location",
                b"retry-after",
            }
        )
        | _RATE_LIMIT
    )
    _KNOWN_TEXT = frozenset(name.decode() for name in _KNOWN)

    def __init__(self, fields: list[tuple[bytes, bytes]]) -> None:
        self._fields = fields
        self._all: CIMultiDictProxy[str] | None = None
        known: dict[str, str] = {}
        self.rate_limit = False
        for name, value in fields:
            key = name.lower()
            if key in self._KNOWN:
                if key in self._RATE_LIMIT:
                    self.rate_limit = True
                text = key.decode()
                if text not in known:
                    known[text] = text_of(value)
                elif text == "content-encoding":  # two lines: two layers, in order
                    known[text] += ", " + text_of(value)
        self._known = known

    def raw(self, name: str) -> bytes | None:
        """The first value of ``name`` (lower case) as its bytes came."""
        key = name.encode()
        return next((value for field, value in self._fields if field.lower() == key), None)

    def get(self, name: str) -> str | None:
        key = name.lower()
        if key in self._KNOWN_TEXT:
            return self._known.get(key)
        return self.all().get(name)

    def items(self) -> Iterable[tuple[str, str]]:
        return self.all().items()

    def all(self) -> CIMultiDictProxy[str]:
        if self._all is None:
            self._all = CIMultiDictProxy(
                CIMultiDict((text_of(name), text_of(value)) for name, value in self._fields)
            )
        return self._all


NO_HEADERS = Headers([])


def unfold(data: bytes) -> bytes:
    """obs-fold in the head replaced by a space, as RFC 9112 §5.2 asks of a user agent."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return _FOLD.sub(b" ", data)
    return _FOLD.sub(b" ", data[:end]) + data[end:]


def charset_of(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
