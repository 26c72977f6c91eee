"""Local test servers on 127.0.0.1: a well-behaved aiohttp app and raw-socket liars.

They run on their own event loop in a background thread, so library tests
(on pytest's loop) and CLI tests (in a subprocess) can both talk to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import math
import re
import socket
import ssl
import struct
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web
from yarl import URL

CHUNK = b"x" * 65536


class State:
    """Per-key counters the routes share (keys keep tests independent)."""

    def __init__(self) -> None:
        self.hits: defaultdict[str, int] = defaultdict(int)
        self.inflight: defaultdict[str, int] = defaultdict(int)
        self.max_inflight: defaultdict[str, int] = defaultdict(int)
        self.arrivals: defaultdict[str, list[float]] = defaultdict(list)
        self.echoes: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.refused: defaultdict[str, int] = defaultdict(int)  # 429s and 503s answered
        self.windows: dict[str, float] = {}  # /budget: when each key's window began


async def _in_flight(state: State, key: str, seconds: float) -> None:
    """Take ``seconds`` to answer, counted in ``key``'s requests in flight."""
    state.inflight[key] += 1
    state.max_inflight[key] = max(state.max_inflight[key], state.inflight[key])
    try:
        await asyncio.sleep(seconds)
    finally:
        state.inflight[key] -= 1


def build_app(state: State) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/ok")
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    @routes.get("/health")
    async def health(request: web.Request) -> web.Response:
        """A JSON health payload: ?status=up|down."""
        payload = {"status": request.query.get("status", "up"), "checks": {"db": "ok"}}
        return web.json_response(payload)

    @routes.route("*", "/status/{code}")
    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text="" if code in (204, 304) else f"status {code}")

    @routes.get("/bytes/{n}")
    async def sized(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = n
        await response.prepare(request)
        while n > 0:
            piece = CHUNK[: min(n, len(CHUNK))]
            await response.write(piece)
            n -= len(piece)
        return response

    @routes.get("/redirect/{n}")
    async def redirect(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        target = "/ok" if n <= 1 else f"/redirect/{n - 1}"
        raise web.HTTPFound(target)

    @routes.get("/loop")
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    @routes.route("*", "/redirect-to")
    async def redirect_to(request: web.Request) -> web.Response:
        if "key" in request.query:
            state.echoes[request.query["key"]].append({"headers": dict(request.headers)})
        code = int(request.query.get("code", "302"))
        return web.Response(status=code, headers={"Location": request.query["url"]})

    @routes.get("/digest/{algorithm}")
    async def digest(request: web.Request) -> web.Response:
        """RFC 7616 Digest (qop=auth) for ann:pw, checked here independently of afetch."""
        algorithm = request.match_info["algorithm"]
        state.hits[f"digest-{algorithm}"] += 1
        new = hashlib.sha256 if algorithm == "SHA-256" else hashlib.md5

        def h(text: str) -> str:
            return new(text.encode()).hexdigest()

        realm, nonce = "afetch tests", "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        given = request.headers.get("Authorization", "")
        if given.startswith("Digest "):
            params = dict(re.findall(r'(\w+)="?([^",]*)"?', given[7:]))
            ha1 = h(f"ann:{realm}:pw")
            ha2 = h(f"{request.method}:{params.get('uri', '')}")
            answer = ":".join([ha1, nonce, params.get("nc", ""), params.get("cnonce", "")])
            if (
                params.get("response") == h(f"{answer}:auth:{ha2}")
                and params.get("opaque") == "5ccc069c403ebaf9f0171e9517f40e41"
            ):
                return web.Response(text="authenticated")
        challenge = (
            f'Digest realm="{realm}", qop="auth", nonce="{nonce}", algorithm={algorithm},'
            ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        )
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    @routes.get("/wall/{kind}")
    async def wall(request: web.Request) -> web.Response:
        """A bot wall's answer of each kind (headers and bodies as the vendors send them)."""
        kind = request.match_info["kind"]
        walls: dict[str, tuple[int, dict[str, str], str]] = {
            "cf-header": (403, {"cf-mitigated": "challenge"}, "<html>Just a moment...</html>"),
            "cf-body": (503, {}, '<script src="https://challenges.cloudflare.com/x.js">'),
            "datadome": (403, {"x-datadome": "protected"}, "blocked"),
            "perimeterx": (403, {}, '<div id="px-captcha"></div>'),
            "imperva": (403, {}, "<iframe src='/_Incapsula_Resource?x'></iframe>"),
            "aws": (405 if "x" in request.query else 403, {"x-amzn-waf-action": "captcha"}, ""),
            "sucuri": (403, {}, "<title>Sucuri WebSite Firewall - Access Denied</title>"),
            "akamai": (403, {}, "Reference&#32;&#35;18.1 https://errors.edgesuite.net/18"),
            "linkedin": (999, {}, "request denied"),
            "plain": (403, {}, "Forbidden: you do not have access"),
        }
        status, headers, body = walls[kind]
        return web.Response(status=status, headers=headers, text=body)

    @routes.get("/cookie/set")
    async def cookie_set(request: web.Request) -> web.Response:
        """Sets sid=abc for this site; ``then=URL`` redirects there."""
        headers = {"Set-Cookie": "sid=abc; Path=/"}
        if "then" in request.query:
            return web.Response(status=302, headers={**headers, "Location": request.query["then"]})
        return web.Response(text="set", headers=headers)

    @routes.get("/redirect-chunked")
    async def redirect_chunked(request: web.Request) -> web.StreamResponse:
        """A 302 whose short body is chunked, as node sends redirects."""
        response = web.StreamResponse(status=302, headers={"Location": request.query["url"]})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"Found. Redirecting to " + request.query["url"].encode())
        await response.write_eof()
        return response

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0.2")))
        return web.Response(text="slow")

    @routes.get("/hang")
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(text="never")  # pragma: no cover

    @routes.get("/trickle")
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10_000
        await response.prepare(request)
        for _ in range(10_000):
            await response.write(b".")
            await asyncio.sleep(0.1)
        return response  # pragma: no cover

    @routes.get("/gzip-bomb")
    async def bomb(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip_bomb(),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    @routes.get("/flaky/{key}")
    async def flaky(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        state.hits[key] += 1
        if state.hits[key] <= int(request.query.get("fail", "2")):
            headers = {}
            if "after" in request.query:
                headers["Retry-After"] = request.query["after"]
            return web.Response(status=int(request.query.get("status", "503")), headers=headers)
        return web.Response(text=f"ok after {state.hits[key]}")

    @routes.route("*", "/count/{key}")
    async def count(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        state.hits[key] += 1
        state.arrivals[key].append(time.monotonic())
        await _in_flight(state, key, float(request.query.get("s", "0.05")))
        return web.Response(text="counted")

    @routes.get("/busy/{key}")
    async def busy(request: web.Request) -> web.Response:
        """A host that answers 503 under load: more than ?max= requests in flight at once
        (each takes ?s= seconds) and the extra ones are refused at once."""
        key = request.match_info["key"]
        state.hits[key] += 1
        if state.inflight[key] >= int(request.query.get("max", "2")):
            state.refused[key] += 1
            return web.Response(status=503, text="overloaded")
        await _in_flight(state, key, float(request.query.get("s", "0.05")))
        return web.Response(text="served")

    @routes.get("/budget/{key}")
    async def budget(request: web.Request) -> web.Response:
        """A fixed-window rate limit of ?limit= requests per ?window= seconds that says
        what is left: IETF RateLimit/RateLimit-Policy (?style=ietf), X-RateLimit-*
        (?style=x, Reset as a Unix time) or nothing (?style=none); 429 once spent."""
        key = request.match_info["key"]
        limit, window = int(request.query.get("limit", "4")), float(request.query["window"])
        style = request.query.get("style", "ietf")
        now = time.time()
        start = state.windows.get(key)
        if start is None or now - start >= window:
            state.windows[key], state.hits[key] = now, 0
        used = state.hits[key] = state.hits[key] + 1
        state.arrivals[key].append(now)
        remaining, reset = max(0, limit - used), state.windows[key] + window - now
        headers = {}
        if style == "ietf":
            headers["RateLimit"] = f'"default";r={remaining};t={math.ceil(reset)}'
            headers["RateLimit-Policy"] = f'"default";q={limit};w={round(window)}'
        elif style == "x":
            headers["X-RateLimit-Limit"] = str(limit)
            headers["X-RateLimit-Remaining"] = str(remaining)
            headers["X-RateLimit-Reset"] = str(int(state.windows[key] + window + 0.999))
        if used > limit:
            state.refused[key] += 1
            headers["Retry-After"] = str(math.ceil(reset))
            return web.Response(status=429, text="slow down", headers=headers)
        return web.Response(text="within budget", headers=headers)

    @routes.get("/huge-header")
    async def huge_header(request: web.Request) -> web.Response:
        size = int(request.query.get("kib", "100")) * 1024
        return web.Response(text="big", headers={"X-Big": "a" * size})

    @routes.get("/multi-header")
    async def multi_header(request: web.Request) -> web.Response:
        response = web.Response(text="two cookies")
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        response.headers["X-Mixed-Case"] = "yes"
        return response

    @routes.route("*", "/conn")
    async def conn(request: web.Request) -> web.Response:
        """Which client connection (its port) carried this request: shows keep-alive reuse."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        port = str(peer[1]) if peer else "?"
        return web.Response(text=port, headers={"X-Peer-Port": port})

    @routes.get("/close")
    async def close(request: web.Request) -> web.Response:
        """Answers after ``s`` seconds and closes: keep-alive never shows, so a client's
        requests to it wait for room on its few first connections."""
        await asyncio.sleep(float(request.query.get("s", "0")))
        return web.Response(text="ok", headers={"Connection": "close"})

    @routes.get("/tls-session")
    async def tls_session(request: web.Request) -> web.Response:
        """Whether this TLS connection resumed a session; each answer closes its connection."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        reused = bool(ssl_object and ssl_object.session_reused)
        return web.Response(text=f"reused={reused}", headers={"Connection": "close"})

    @routes.get("/compressed")
    async def compressed(request: web.Request) -> web.Response:
        """'hello' * n under the encodings in ``as`` (comma-separated, applied in order):
        gzip, deflate (zlib), raw-deflate, br, zstd, or any other name (bytes unchanged);
        ``lines=1`` names them on separate header lines, ``cut=N`` drops the last N bytes,
        ``members=K`` splits gzip into K members, ``junk=TEXT`` follows the body,
        ``status=N`` answers with that status."""
        body = b"hello" * int(request.query.get("n", "1000"))
        names = []
        for kind in request.query.get("as", "gzip").split(","):
            body = encode(kind, body, members=int(request.query.get("members", "1")))
            names.append("deflate" if kind == "raw-deflate" else kind)
        if cut := int(request.query.get("cut", "0")):
            body = body[:-cut]
        body += request.query.get("junk", "").encode()
        response = web.Response(body=body, status=int(request.query.get("status", "200")))
        if request.query.get("lines"):
            for name in names:
                response.headers.add("Content-Encoding", name)
        else:
            response.headers["Content-Encoding"] = ", ".join(names)
        return response

    @routes.get("/control-chars")
    async def control_chars(request: web.Request) -> web.Response:
        size = int(request.query.get("n", "1000"))
        return web.Response(body=b"\x01" * size, content_type="text/plain", charset="utf-8")

    @routes.get("/binary")
    async def binary(request: web.Request) -> web.Response:
        size = int(request.query.get("n", "100"))
        return web.Response(body=b"\xff" * size, content_type="application/octet-stream")

    @routes.get("/latin1")
    async def latin1(request: web.Request) -> web.Response:
        charset = request.query.get("charset", "iso-8859-1")
        return web.Response(
            body="café".encode("iso-8859-1"),
            headers={"Content-Type": f"text/plain; charset={charset}"},
        )

    @routes.route("*", "/echo")
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        if "key" in request.query:
            state.echoes[request.query["key"]].append(
                {
                    "method": request.method,
                    "body": body.decode(),
                    "headers": dict(request.headers),
                    "header_list": list(request.headers.items()),
                }
            )
        return web.json_response(
            {
                "method": request.method,
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
            }
        )

    app = web.Application()
    app.add_routes(routes)
    return app


_BOMB: bytes | None = None
BOMB_EXPANDED = 200 * 1024 * 1024


def encode(kind: str, data: bytes, members: int = 1) -> bytes:
    if kind == "gzip" and members > 1:  # RFC 1952: members one after another
        step = -(-len(data) // members)
        return b"".join(encode(kind, data[i : i + step]) for i in range(0, len(data), step))
    if kind == "br":
        import brotli  # type: ignore[import-untyped]

        return bytes(brotli.compress(data))
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}.get(kind)
    if wbits is None:
        return data
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


def gzip_bomb() -> bytes:
    """200 MiB of zeros, gzip-compressed to about 200 KiB."""
    global _BOMB
    if _BOMB is None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(1024 * 1024)
        parts = [compressor.compress(zeros) for _ in range(BOMB_EXPANDED // len(zeros))]
        parts.append(compressor.flush())
        _BOMB = b"".join(parts)
    return _BOMB


# ---------------------------------------------------------------------------
# Raw-socket servers for responses aiohttp's server would never send.

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


def _reply(payload: bytes, *, reset: bool = False, hold: float = 0.0) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        with contextlib.suppress(Exception):
            writer.write(payload)
            await writer.drain()
            if hold:
                await asyncio.sleep(hold)
            if reset:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

    return handle


def _answer_once(payload: bytes, *, reset: bool = False) -> Handler:
    """Answer one request with keep-alive, take the next one, then hang up unanswered
    (``reset``: with a TCP reset, as a server whose idle timer fired at that moment)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        with contextlib.suppress(Exception):
            writer.write(payload)
            await writer.drain()
            await _read_request(reader)
            if reset:
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()

    return handle


async def _deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Never reads: the transport stops reading once its small buffer is full."""
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        await asyncio.sleep(3600)


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await asyncio.sleep(3600)


def _keep_answering(payload: bytes, unsolicited: bytes = b"", after: float = 0.0) -> Handler:
    """Answers every request on a connection with ``payload``; then, idle, ``unsolicited``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                writer.write(payload)
                await writer.drain()
                if unsolicited:
                    await asyncio.sleep(after)
                    writer.write(unsolicited)
                    await writer.drain()
        writer.close()

    return handle


def _answer_at_accept(payload: bytes) -> Handler:
    """Answers and closes as soon as it accepts, before reading any request (a busy LB)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            writer.write(payload)
            await writer.drain()
            writer.close()

    return handle


def _first_bytes_then(payload: bytes) -> Handler:
    """Reads what the client sends first (a TLS ClientHello), writes ``payload``, hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(100), 5)
            writer.write(payload)
            await writer.drain()
        writer.close()

    return handle


async def _odd_location(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Redirects / with a Location that has blanks around it and a Latin-1 byte in it."""
    with contextlib.suppress(Exception):
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            target = head.split(b" ", 2)[1]
            if target == b"/":
                writer.write(
                    b"HTTP/1.1 302 Found\r\nLocation:  /target?q=caf\xe9&s=a b \t\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(target), target)
                )
            await writer.drain()
    writer.close()


#: What the recording server received, by request-target: the exact bytes.
RECORDED: defaultdict[str, list[bytes]] = defaultdict(list)


async def _record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keeps every byte of a connection (a smuggled second request too), then answers once."""
    data = b""
    with contextlib.suppress(Exception):
        data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        while True:
            try:
                more = await asyncio.wait_for(reader.read(65536), 0.3)
            except TimeoutError:
                break
            if not more:
                break
            data += more
        _keep(data)  # before answering: the client may look as soon as it has its answer
        data = b""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
    if data:  # the connection failed before the answer: what came is kept all the same
        _keep(data)


def _keep(data: bytes) -> None:
    target = data.split(b" ", 2)[1].decode("latin-1") if data.count(b" ") >= 2 else ""
    RECORDED[target].append(data)


RAW_HANDLERS: dict[str, Handler] = {
    "record": _record,
    "desync": _keep_answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
        b"HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 8\r\n\r\nsmuggled"
    ),
    "junk-after-chunk": _keep_answering(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\nJUNK"
    ),
    "head-with-body": _keep_answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"),
    "unsolicited": _keep_answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
        after=0.1,
    ),
    "non-utf8-head": _reply(
        b"HTTP/1.1 200 R\xe9ason\xff\r\nContent-Type: text/plain; charset=\xff\xfe\r\n"
        b"X-V: \xc3\x28\xff\r\nContent-Length: 2\r\n\r\nok"
    ),
    "early-413": _reply(
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n"
    ),
    "odd-location": _odd_location,
    "answer-at-accept": _answer_at_accept(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
    ),
    "tls-eof": _first_bytes_then(b""),
    "tls-plain-http": _first_bytes_then(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
    "status-099": _reply(b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"),
    "obs-fold": _reply(
        b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 2\r\n\r\nok"
    ),
    "garbage": _reply(b"HELLO THIS IS NOT HTTP\r\n\r\n"),
    "short": _reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this much"),
    "reset": _reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"y" * 5000, reset=True, hold=0.05
    ),
    "empty": _reply(b""),
    "silent": _silent,
    "huge-status": _reply(b"HTTP/1.1 200 " + b"O" * 200_000 + b"\r\n\r\n"),
    "answer-once": _answer_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "answer-once-reset": _answer_once(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", reset=True
    ),
    "chunked": _reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    ),
    "bad-chunk": _reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    ),
    "until-close": _reply(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"),
    "bare-lf": _reply(b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 5\n\nbare!"),
    "chunk-blanks": _reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5  \r\nhello\r\n0\r\n\r\n"
    ),
    "coded-until-close": _reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nto the end"
    ),
    "early-hints": _reply(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    ),
    "two-lengths": _reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
    "many-headers": _reply(
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(300)) + b"\r\n"
    ),
    "latin1-header": _reply(
        b"HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n"
    ),
}


class ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form requests and CONNECT) that records heads."""

    def __init__(self) -> None:
        self.heads: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except Exception:
            writer.close()
            return
        text = head.decode("latin-1")
        self.heads.append(text)
        method, target, _ = text.split("\r\n", 1)[0].split(" ", 2)
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
        else:
            parsed = URL(target)
            host, port = parsed.host or "", str(parsed.port)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(head)  # servers accept absolute-form targets
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()


class ServerThread:
    """Starts every server on a private loop in a daemon thread."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        self.tls_dir = tls_dir
        self.state = State()
        self.loop = asyncio.new_event_loop()
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="test-servers")
        self._runner: web.AppRunner | None = None

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test servers did not start")
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['app']}"

    def raw(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/"

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        await self.loop.run_in_executor(None, gzip_bomb)  # 1 s of CPU: not on the serving loop
        self._runner = web.AppRunner(build_app(self.state), handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.ports["app"] = _port_of(site)
        # The same app on a second port: "another origin" for redirect tests.
        other = web.TCPSite(self._runner, "127.0.0.1", 0)
        await other.start()
        self.ports["other"] = _port_of(other)
        if self.tls_dir is not None:
            await self._start_tls(self.tls_dir)
        self.proxy = ForwardProxy()
        proxy_server = await asyncio.start_server(self.proxy.handle, "127.0.0.1", 0)
        self.ports["proxy"] = proxy_server.sockets[0].getsockname()[1]
        for name, handler in RAW_HANDLERS.items():
            server = await asyncio.start_server(handler, "127.0.0.1", 0)
            self.ports[name] = server.sockets[0].getsockname()[1]
        # Takes connections and never reads: a small receive buffer, so an upload stalls
        # in the client's own write buffer (the ``send`` phase).
        deaf = socket.socket()
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deaf.bind(("127.0.0.1", 0))
        server = await asyncio.start_server(_deaf, sock=deaf)
        self.ports["deaf"] = deaf.getsockname()[1]

    async def _start_tls(self, tls_dir: Path) -> None:
        """HTTPS with a certificate from a private CA, and one that demands a client cert."""
        assert self._runner is not None
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(tls_dir / "ca.pem"))
        ca.issue_cert("client@example").private_key_and_cert_chain_pem.write_to_path(
            str(tls_dir / "client.pem")
        )
        trustme.CA().cert_pem.write_to_path(str(tls_dir / "other-ca.pem"))
        server_cert = ca.issue_cert("localhost", "127.0.0.1")
        for name, mutual in (("https", False), ("https-mtls", True)):
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_cert.configure_cert(context)
            if mutual:
                ca.configure_trust(context)
                context.verify_mode = ssl.CERT_REQUIRED
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
            await site.start()
            self.ports[name] = _port_of(site)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=12, hours=12)
        ca.issue_cert("localhost", "127.0.0.1", not_after=soon).configure_cert(context)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.ports["https-expiring"] = _port_of(site)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        ca.issue_cert(
            "localhost", "127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=90)
        ).configure_cert(context)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.ports["https-expired"] = _port_of(site)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("wrong.example").configure_cert(context)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.ports["https-wrong-name"] = _port_of(site)

    def https(self, name: str = "https") -> str:
        return f"https://127.0.0.1:{self.ports[name]}"


def _port_of(site: web.TCPSite) -> int:
    server = site._server
    assert server is not None
    return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
