"""Content-Encoding → a decoder that inflates in bounded pieces (gzip bombs stay small)."""

from __future__ import annotations

import zlib
from typing import Protocol

from afetch.errors import ResponseError

#: Largest piece a compressed body is inflated into at a time.
INFLATE_PIECE = 256 * 1024


class Decoder(Protocol):
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...
    def flush(self) -> bytes: ...


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """A decoder for the encodings afetch asks for (gzip, deflate); None: as is."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder: Decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return decoder
    if encoding == "deflate":
        return Deflate()
    return None


def inflate(decoder: Decoder, piece: bytes) -> tuple[bytes, bytes]:
    """(decoded, rest of ``piece`` still to inflate), at most INFLATE_PIECE decoded."""
    try:
        decoded = decoder.decompress(piece, INFLATE_PIECE)
    except zlib.error as exc:
        raise ResponseError(f"cannot decode the compressed body: {exc}") from exc
    return decoded, decoder.unconsumed_tail


def finish(decoder: Decoder) -> bytes:
    try:
        return decoder.flush()
    except zlib.error as exc:
        raise ResponseError(f"cannot decode the compressed body: {exc}") from exc


class Deflate:
    """``Content-Encoding: deflate`` is zlib-wrapped by the RFC, raw by many servers."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj()
        self._started = False

    @property
    def unconsumed_tail(self) -> bytes:
        return self._inner.unconsumed_tail

    def decompress(self, data: bytes, limit: int, /) -> bytes:
        if not self._started:
            self._started = True
            try:
                return self._inner.decompress(data, limit)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inner.decompress(data, limit)

    def flush(self) -> bytes:
        return self._inner.flush()
