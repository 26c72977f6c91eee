"""The lean HTTP/1.1 client (afetch.http.lean) against real local servers.

Most of the suite already goes through it (it is the default for direct
requests); these tests cover what only a hand-written client can get wrong:
keep-alive reuse and its limits, framing (chunked, close-delimited, 1xx),
decoding, header text, and parity with aiohttp on the same responses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import uuid
from collections import Counter
from typing import Any

import pytest
from yarl import URL

import afetch
from afetch.config import Config
from afetch.models import FetchSpec
from tests.conftest import records_of, run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")

FAST = {"retries": 0, "timeout": 5.0}


async def fetch(urls: list[str], **options: Any) -> list[dict[str, Any]]:
    return records_of(await afetch.fetch_all(urls, **{**FAST, **options}))


async def test_keep_alive_connections_are_reused(servers: ServerThread) -> None:
    """Sequential requests to one host share one connection (no connect phase after the first)."""
    records = await fetch([f"{servers.base}/conn"] * 5, concurrency=1, capture_body=True)
    assert all(r["ok"] for r in records)
    assert len({r["body"] for r in records}) == 1  # one client port: one connection
    assert records[0]["timing"]["connect_ms"] is not None
    assert records[-1]["timing"]["connect_ms"] is None  # reused: no connect phase


async def test_head_responses_leave_the_connection_reusable(servers: ServerThread) -> None:
    """A HEAD answer leaves its connection fit for the next request."""
    records = await fetch(
        [f"{servers.base}/conn"] * 3, concurrency=1, method="HEAD", capture_headers=True
    )
    assert [r["status"] for r in records] == [200, 200, 200]
    assert {r["size"] for r in records} == {0}
    assert len({r["headers"]["x-peer-port"] for r in records}) == 1


async def test_a_chunked_redirect_keeps_its_connection(servers: ServerThread) -> None:
    """node sends redirects with chunked bodies: read to the end, the connection is kept."""
    url = f"{servers.base}/redirect-chunked?url=/conn"
    records = await fetch([url] * 5, concurrency=1, capture_body=True)
    assert all(r["ok"] for r in records), records
    assert len({r["body"] for r in records}) == 1  # one client port: one connection


@pytest.mark.parametrize("each_transport", ["lean"], indirect=True)
async def test_idle_connections_beyond_the_cap_are_closed(servers: ServerThread) -> None:
    """One idle connection kept: going to another origin closes the first."""
    other = f"http://127.0.0.1:{servers.ports['other']}/conn"
    records = await fetch(
        [f"{servers.base}/conn", other, f"{servers.base}/conn"],
        concurrency=1,
        max_idle=1,
        capture_body=True,
    )
    assert all(r["ok"] for r in records)
    assert records[0]["body"] != records[2]["body"]


async def test_a_kept_connection_the_server_dropped_is_replaced_silently(
    servers: ServerThread,
) -> None:
    """The server answers once, then hangs up (or resets) on the next request: not a
    failure, no retry counted, in both transports."""
    for name in ("answer-once", "answer-once-reset"):
        records = await fetch([servers.raw(name)] * 4, concurrency=1)
        assert [(r["ok"], r["attempts"]) for r in records] == [(True, 1)] * 4, (name, records)


async def test_a_fresh_connection_closed_unanswered_is_a_protocol_error(
    servers: ServerThread,
) -> None:
    """A new connection closed without an answer is a protocol error."""
    (record,) = await fetch([servers.raw("empty")])
    assert record["error"]["type"] == "protocol"
    assert "without sending a response" in record["error"]["message"]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("chunked", "hello world"),
        ("until-close", "all of it"),
        ("early-hints", "ok"),
        ("bare-lf", "bare!"),
        ("chunk-blanks", "hello"),
        ("coded-until-close", "to the end"),
    ],
)
async def test_framings(servers: ServerThread, name: str, body: str) -> None:
    """Chunked with a trailer, HTTP/1.0 to the end of the connection, a 103 before the answer;
    as curl reads them: lines ended by a bare LF, blanks after a chunk size, and a
    Transfer-Encoding without chunked last, whose body ends with the connection (RFC 9112)."""
    (record,) = await fetch([servers.raw(name)], capture_body=True)
    assert record["ok"], record
    assert (record["status"], record["body"], record["size"]) == (200, body, len(body))


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("bad-chunk", "protocol", "malformed"),
        ("two-lengths", "protocol", "content-length"),
        ("many-headers", "too_large", "too many headers"),
    ],
)
async def test_malformed_responses(servers: ServerThread, name: str, kind: str, words: str) -> None:
    """Each kind of malformed response is the error kind the table says."""
    (record,) = await fetch([servers.raw(name)])
    assert record["error"]["type"] == kind
    assert words in record["error"]["message"].lower()


@pytest.mark.parametrize(
    "query",
    [
        "as=gzip",
        "as=deflate",
        "as=raw-deflate",
        "as=br",
        "as=zstd",
        "as=gzip,gzip",  # one header line, two layers
        "as=deflate,gzip&lines=1",  # two header lines
        "as=br,zstd,gzip",
    ],
)
async def test_compressed_bodies_are_decoded(servers: ServerThread, query: str) -> None:
    """Every encoding, stacked or on two header lines, decodes to the body."""
    (record,) = await fetch([f"{servers.base}/compressed?{query}"], capture_body=True)
    assert record["ok"], record
    assert record["body"] == "hello" * 1000
    assert record["size"] == 5000


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "gzip,gzip"])
async def test_a_truncated_compressed_body_is_protocol(
    servers: ServerThread, encoding: str
) -> None:
    """Never recorded ok with a silently shortened body."""
    url = f"{servers.base}/compressed?n=20000&as={encoding}&cut=6"
    (record,) = await fetch([url], capture_body=True)
    assert record["error"]["type"] == "protocol", record
    assert "truncated" in record["error"]["message"] or "decode" in record["error"]["message"]


async def test_a_brotli_body_inflating_past_half_a_megabyte_is_whole(
    servers: ServerThread,
) -> None:
    """brotli may hold output while it says it takes input: all 2 MB arrive, ok."""
    (record,) = await fetch([f"{servers.base}/compressed?n=400000&as=br"], hash_body=True)
    assert record["ok"], record
    assert record["size"] == 2_000_000
    assert record["sha256"] == hashlib.sha256(b"hello" * 400_000).hexdigest()


@pytest.mark.parametrize("junk", ["", "trailing-junk"])
async def test_every_gzip_member_is_decoded(servers: ServerThread, junk: str) -> None:
    """RFC 1952 members one after another are one body; junk after the last is ignored."""
    url = f"{servers.base}/compressed?n=13440&as=gzip&members=3&junk={junk}"
    (record,) = await fetch([url], capture_body=True)
    assert record["ok"], record
    assert record["size"] == 67_200
    assert record["body"] == "hello" * 13_440


@pytest.mark.parametrize(
    ("method", "query"),
    [
        ("HEAD", "as=gzip"),
        ("HEAD", "as=br"),
        ("GET", "as=gzip&status=204"),
        ("GET", "as=gzip&status=304"),
    ],
)
async def test_bodiless_answers_with_content_encoding_are_ok(
    servers: ServerThread, method: str, query: str
) -> None:
    """HEAD, 204 and 304 have no body, whatever Content-Encoding says (nginx sends it)."""
    (record,) = await fetch([f"{servers.base}/compressed?{query}"], method=method)
    assert record["ok"], record
    assert record["attempts"] == 1
    assert record["size"] == 0


async def test_an_unknown_encoding_passes_through_unchanged(servers: ServerThread) -> None:
    """An encoding afetch does not know passes the body through as it came."""
    (record,) = await fetch([f"{servers.base}/compressed?as=x-custom"], capture_body=True)
    assert record["ok"], record
    assert record["body"] == "hello" * 1000


async def test_too_many_stacked_encodings_are_protocol(servers: ServerThread) -> None:
    """More than four stacked encodings are refused as protocol."""
    (record,) = await fetch([f"{servers.base}/compressed?as=gzip,gzip,gzip,gzip,gzip&n=10"])
    assert record["error"]["type"] == "protocol"
    assert "stacked" in record["error"]["message"]


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip,gzip"])
async def test_bombs_in_every_encoding_stop_at_max_body(
    servers: ServerThread, encoding: str
) -> None:
    """A bomb in br, zstd or stacked gzip stops at --max-body."""
    url = f"{servers.base}/compressed?n=4000000&as={encoding}"  # 20 MB of 'hello'
    (record,) = await fetch([url], max_body=1000)
    assert (record["size"], record["truncated"]) == (1000, True)


async def test_compressed_body_is_capped_while_inflating(servers: ServerThread) -> None:
    """--max-body counts decoded bytes while inflating."""
    (record,) = await fetch([f"{servers.base}/compressed?n=100000"], max_body=1000)
    assert (record["size"], record["truncated"]) == (1000, True)


async def test_header_text_utf8_or_latin1(servers: ServerThread) -> None:
    """Header values are UTF-8 when they are, else Latin-1; never an error."""
    (record,) = await fetch([servers.raw("latin1-header")], capture_headers=True)
    assert record["headers"]["x-name"] == "café"  # a Latin-1 byte
    assert record["headers"]["x-utf8"] == "café"  # UTF-8 bytes


async def test_credentials_in_the_url_become_basic_auth(servers: ServerThread) -> None:
    """user:pass@ in a URL is sent as Basic Authorization."""
    key = uuid.uuid4().hex
    url = f"http://user:pa%20ss@127.0.0.1:{servers.ports['app']}/echo?key={key}"
    (record,) = await fetch([url])
    assert record["ok"]
    sent = servers.state.echoes[key][0]["headers"]["Authorization"]
    assert sent == "Basic " + base64.b64encode(b"user:pa ss").decode()


async def test_default_request_headers(servers: ServerThread) -> None:
    """Every request carries afetch's Accept, Accept-Encoding and User-Agent."""
    key = uuid.uuid4().hex
    (record,) = await fetch([f"{servers.base}/echo?key={key}"], user_agent="probe/1")
    assert record["ok"]
    sent = servers.state.echoes[key][0]["headers"]
    assert sent["User-Agent"] == "probe/1"
    assert sent["Accept"] == "*/*"
    assert sent["Accept-Encoding"] == "gzip, deflate, br, zstd"
    assert sent["Host"] == f"127.0.0.1:{servers.ports['app']}"


async def test_a_header_with_a_line_break_is_refused_not_sent(servers: ServerThread) -> None:
    """JSON lines are checked on input; a library caller's FetchSpec is checked here."""
    url = f"{servers.base}/ok"
    spec = FetchSpec(0, url, URL(url), "GET", headers=(("X-Bad", "a\r\nInjected: 1"),))
    (result,) = await afetch.fetch_all([spec], **FAST)
    assert result.error is not None
    assert result.error.kind == "invalid_input"


PARITY_CASES = [
    "/ok",
    "/status/404",
    "/redirect/3",
    "/compressed?as=gzip",
    "/bytes/300000",
]
PARITY_RAW = ["garbage", "short", "reset", "empty", "huge-status", "chunked", "until-close"]


@pytest.mark.parametrize("target", PARITY_CASES + [f"raw:{name}" for name in PARITY_RAW])
async def test_same_outcome_as_aiohttp(servers: ServerThread, target: str) -> None:
    """The lean client and aiohttp record the same outcome on the same responses."""
    url = servers.raw(target[4:]) if target.startswith("raw:") else servers.base + target
    outcomes = []
    for client in ("lean", "aiohttp"):
        (record,) = await fetch([url], http_client=client, hash_body=True)
        error = record["error"]
        outcomes.append(
            (
                record["ok"],
                record["status"],
                record["size"] if record["ok"] else None,
                record.get("sha256") if record["ok"] else None,
                len(record.get("redirects", ())),
                error and error["type"],
            )
        )
    assert outcomes[0] == outcomes[1]


def test_cli_http_client_option(servers: ServerThread) -> None:
    """--http-client picks the transport from the command line."""
    for client in ("lean", "aiohttp"):
        run = run_cli("--http-client", client, f"{servers.base}/ok")
        assert run.returncode == 0, run.stderr
        assert run.records[0]["ok"]
    run = run_cli("--http-client", "curl", f"{servers.base}/ok", status=2)
    assert run.returncode == 2


async def test_finished_requests_leave_no_cyclic_garbage(servers: ServerThread) -> None:
    """Reference counting frees each request's objects: memory stays flat over long lists."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await fetch([f"{servers.base}/ok?i={i}" for i in range(40)], concurrency=4)
        gc.collect()
        per_request = Counter(
            type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("afetch")
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert [name for name, count in per_request.items() if count >= 40] == []


async def test_idle_connections_stay_within_the_cap_over_many_hosts() -> None:
    """A list of many distinct origins: at most max_idle connections are kept open while
    the run goes on (aiohttp kept them all, running out of descriptors at 50 000 hosts)."""
    open_now = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now
        open_now += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now -= 1
            writer.close()

    listeners = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(12)]
    try:
        urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}/" for s in listeners]
        seen = 0
        async with contextlib.aclosing(
            afetch.stream(urls, Config(concurrency=1, max_idle=3))
        ) as results:
            async for result in results:
                assert result.ok, result
                seen += 1
                if seen == len(urls):
                    for _ in range(100):  # a closed connection reaches the server soon
                        if open_now <= 3:
                            break
                        await asyncio.sleep(0.01)
                    assert open_now <= 3
        assert seen == 12
    finally:
        for listener in listeners:
            listener.close()


@pytest.mark.parametrize("each_transport", ["lean"], indirect=True)
@pytest.mark.parametrize("keep_alive", [False, True])
async def test_new_connections_to_one_host_open_a_few_at_a_time(keep_alive: bool) -> None:
    """-c 24 to one host: a server that closes after each answer (Python's http.server,
    whose accept queue holds 5) never sees more than 6 connections at once; one that
    keeps them alive soon gets all 24 requests side by side."""
    open_now = most = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(0.03)
                close = b"" if keep_alive else b"Connection: close\r\n"
                writer.write(b"HTTP/1.1 200 OK\r\n" + close + b"Content-Length: 2\r\n\r\nok")
                await writer.drain()
                if not keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        records = await fetch([f"{url}?i={i}" for i in range(120)], concurrency=24)
        assert all(r["ok"] for r in records)
        assert most == 24 if keep_alive else most <= 6, most
    finally:
        server.close()
