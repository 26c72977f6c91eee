"""Content-Encoding → a decoder that inflates in bounded pieces (bombs stay small).

Both transports decode through this module (aiohttp's own decompression is
off), so they agree on every body: stacked encodings (``gzip, gzip`` or two
header lines) are undone in reverse order, up to ``MAX_LAYERS``; a body
whose compressed stream ends early or is corrupt is ``protocol``, never a
silently shortened body; an encoding afetch cannot decode passes through
unchanged. ``br`` and ``zstd`` are decoded (and asked for) when the
``brotli`` and ``zstandard`` packages are installed.
"""

from __future__ import annotations

import importlib.util
import zlib
from typing import Any, Protocol

from afetch.errors import ResponseError

#: Largest piece a compressed body is inflated into at a time.
INFLATE_PIECE = 256 * 1024
#: Encodings stacked deeper than this are refused (each layer is another bomb).
MAX_LAYERS = 4
#: zstd has no output bound per call: input goes in pieces this small, so one
#: call yields at most ~2 MiB (a zstd block of 128 KiB can be 4 bytes).
_ZSTD_STEP = 64

HAS_BROTLI = importlib.util.find_spec("brotli") is not None
HAS_ZSTD = importlib.util.find_spec("zstandard") is not None
#: What afetch asks for: what it can decode.
ACCEPT_ENCODING = ", ".join(
    ["gzip", "deflate", *(["br"] if HAS_BROTLI else []), *(["zstd"] if HAS_ZSTD else [])]
)


class Decoder(Protocol):
    def push(self, data: bytes) -> None:
        """Compressed bytes in."""

    def pull(self) -> bytes:
        """Up to about INFLATE_PIECE decoded bytes; b"" when it needs more input."""

    def end(self) -> None:
        """The body ended (everything pulled): ResponseError if the stream did not."""


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """A decoder for every layer of ``Content-Encoding``; None: the body as it came."""
    if not content_encoding:
        return None
    names = [n.strip().lower() for n in content_encoding.split(",")]
    names = [n for n in names if n and n != "identity"]
    if not names or any(n not in _MAKERS for n in names):
        return None  # unknown (or not installed): passed through unchanged
    if len(names) > MAX_LAYERS:
        raise ResponseError(f"{len(names)} content encodings stacked (at most {MAX_LAYERS})")
    layers = [_MAKERS[name]() for name in reversed(names)]  # the last applied comes off first
    return layers[0] if len(layers) == 1 else Chain(layers)


class Zlib:
    """gzip, and deflate (zlib-wrapped by the RFC, raw from many servers).

    A gzip body may hold several members one after another (RFC 1952 2.2):
    every member is decoded, as Python's ``gzip`` and browsers do. Bytes
    after the last member that do not start another one are ignored, as by
    curl; so are bytes after the end of a deflate stream.
    """

    def __init__(self, wbits: int, name: str, raw_fallback: bool = False) -> None:
        self._wbits = wbits
        self._inner = zlib.decompressobj(wbits)
        self._name = name
        self._fallback = raw_fallback
        self._pending = b""
        self._members = wbits > zlib.MAX_WBITS  # gzip framing: members may follow
        self._between = False  # a member ended; the next bytes decide what follows
        self._trailing = False  # bytes after the last member: dropped

    def push(self, data: bytes) -> None:
        if not self._trailing:
            self._pending = self._pending + data if self._pending else data

    def pull(self) -> bytes:
        if self._inner.eof and not self._next_member():
            return b""
        if self._between and not self._start_member():
            return b""
        try:
            out = self._inner.decompress(self._pending, INFLATE_PIECE)
        except zlib.error as exc:
            if not self._fallback:
                raise _corrupt(self._name, exc) from exc
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._retry()
        if self._pending:
            self._fallback = False  # the first bytes decided: zlib-wrapped or raw
        self._pending = self._inner.unconsumed_tail
        return out

    def _next_member(self) -> bool:
        """The stream ended: True when another gzip member may follow."""
        rest = self._inner.unused_data + self._pending
        if not self._members:
            self._trailing, self._pending = True, b""
            return False
        self._inner = zlib.decompressobj(self._wbits)
        self._between, self._pending = True, rest
        return True

    def _start_member(self) -> bool:
        """Between members: True once the next one's magic bytes are here."""
        if len(self._pending) < 2:
            return False  # wait for more (a lone byte at the end is trailing junk)
        if self._pending[:2] != _GZIP_MAGIC:
            self._trailing, self._between, self._pending = True, False, b""
            return False
        self._between = False
        return True

    def _retry(self) -> bytes:
        try:
            return self._inner.decompress(self._pending, INFLATE_PIECE)
        except zlib.error as exc:
            raise _corrupt(self._name, exc) from exc

    def end(self) -> None:
        if not (self._inner.eof or self._between or self._trailing):
            raise _truncated(self._name)


_GZIP_MAGIC = b"\x1f\x8b"


class Brotli:
    def __init__(self) -> None:
        import brotli  # type: ignore[import-untyped]

        self._error: type[Exception] = brotli.error
        self._inner: Any = brotli.Decompressor()
        self._pending = b""

    def push(self, data: bytes) -> None:
        self._pending = self._pending + data if self._pending else data

    def pull(self) -> bytes:
        inner = self._inner
        if inner.is_finished():
            self._pending = b""
            return b""
        data = b""
        if inner.can_accept_more_data():
            # brotli can say it takes input while output it already made is
            # still waiting: ask for output even with nothing new to give.
            data, self._pending = self._pending, b""
        try:
            out: bytes = inner.process(data, output_buffer_limit=INFLATE_PIECE)
        except self._error as exc:
            raise _corrupt("br", exc) from exc
        return out

    def end(self) -> None:
        if not self._inner.is_finished():
            raise _truncated("br")


class Zstd:
    def __init__(self) -> None:
        import zstandard

        self._error: type[Exception] = zstandard.ZstdError
        self._inner: Any = zstandard.ZstdDecompressor().decompressobj()
        self._pending = memoryview(b"")

    def push(self, data: bytes) -> None:
        self._pending = memoryview(bytes(self._pending) + data if self._pending else data)

    def pull(self) -> bytes:
        pieces: list[bytes] = []
        size = 0
        while self._pending and size < INFLATE_PIECE and not self._inner.eof:
            step, self._pending = self._pending[:_ZSTD_STEP], self._pending[_ZSTD_STEP:]
            try:
                piece: bytes = self._inner.decompress(step)
            except self._error as exc:
                raise _corrupt("zstd", exc) from exc
            pieces.append(piece)
            size += len(piece)
        return b"".join(pieces)

    def end(self) -> None:
        if not self._inner.eof:
            raise _truncated("zstd")


class Chain:
    """Stacked encodings: each layer decodes what the one before it produced."""

    def __init__(self, layers: list[Decoder]) -> None:
        self._layers = layers

    def push(self, data: bytes) -> None:
        self._layers[0].push(data)

    def pull(self) -> bytes:
        return self._pull(len(self._layers) - 1)

    def _pull(self, i: int) -> bytes:
        while True:
            out = self._layers[i].pull()
            if out or i == 0:
                return out
            middle = self._pull(i - 1)
            if not middle:
                return b""
            self._layers[i].push(middle)

    def end(self) -> None:
        for layer in self._layers:
            layer.end()


def _corrupt(name: str, exc: Exception) -> ResponseError:
    return ResponseError(f"cannot decode the {name} body: {exc}")


def _truncated(name: str) -> ResponseError:
    return ResponseError(f"the {name} body ends before its compressed stream does (truncated)")


_MAKERS: dict[str, Any] = {
    "gzip": lambda: Zlib(16 + zlib.MAX_WBITS, "gzip"),
    "x-gzip": lambda: Zlib(16 + zlib.MAX_WBITS, "gzip"),
    "deflate": lambda: Zlib(zlib.MAX_WBITS, "deflate", raw_fallback=True),
    **({"br": Brotli} if HAS_BROTLI else {}),
    **({"zstd": Zstd} if HAS_ZSTD else {}),
}
