"""fetch_one through the library API against real local servers: one record per outcome."""

from __future__ import annotations

import contextlib
import socket
import time
import tracemalloc
from typing import Any
from urllib.parse import quote

import orjson
import pytest

import afetch
from afetch.config import Config
from afetch.inputs import RequestParser
from afetch.models import FetchSpec
from tests.conftest import records_of
from tests.server import ServerThread, closed_port

pytestmark = pytest.mark.usefixtures("each_transport")

FAST = {"retries": 0, "timeout": 3.0}


async def one(url: str, **options: Any) -> dict[str, Any]:
    results = await afetch.fetch_all([url], **{**FAST, **options})
    (record,) = records_of(results)
    return record


async def test_ok_has_every_response_field(servers: ServerThread) -> None:
    """A 200 is ok and carries status, reason, content type, size, final URL, timing."""
    record = await one(f"{servers.base}/ok")
    assert record["ok"] is True
    assert record["error"] is None
    assert record["status"] == 200
    assert record["reason"] == "OK"
    assert record["content_type"].startswith("text/plain")
    assert record["size"] == 2
    assert record["final_url"] == f"{servers.base}/ok"
    assert record["attempts"] == 1
    assert record["timing"]["total_ms"] > 0


@pytest.mark.parametrize(("code", "ok"), [(204, True), (304, True), (404, False), (500, False)])
async def test_status_codes_decide_ok(servers: ServerThread, code: int, ok: bool) -> None:
    """200-399 are ok by default; 4xx and 5xx are http errors with the status kept."""
    record = await one(f"{servers.base}/status/{code}")
    assert record["status"] == code
    assert record["ok"] is ok
    assert (record["error"] or {}).get("type") == (None if ok else "http")


async def test_redirect_chain_is_listed(servers: ServerThread) -> None:
    """Each redirect hop is listed with its status; final_url is where it ended."""
    record = await one(f"{servers.base}/redirect/3")
    assert record["ok"] is True
    assert record["final_url"] == f"{servers.base}/ok"
    assert [hop["url"] for hop in record["redirects"]] == [
        f"{servers.base}/redirect/3",
        f"{servers.base}/redirect/2",
        f"{servers.base}/redirect/1",
    ]
    assert {hop["status"] for hop in record["redirects"]} == {302}


async def test_redirect_loop_is_too_many_redirects(servers: ServerThread) -> None:
    """At most --max-redirects hops are followed; one more is an error."""
    record = await one(f"{servers.base}/loop", max_redirects=4)
    assert record["error"]["type"] == "too_many_redirects"
    assert len(record["redirects"]) == 4
    assert (await one(f"{servers.base}/redirect/4", max_redirects=4))["ok"] is True


async def test_no_follow_records_the_redirect_itself(servers: ServerThread) -> None:
    """--no-follow: the 3xx is the answer, and it is ok."""
    record = await one(f"{servers.base}/redirect/2", follow=False)
    assert record["status"] == 302
    assert record["ok"] is True
    assert "redirects" not in record


@pytest.mark.parametrize(
    ("code", "method", "body"),
    [(301, "GET", ""), (302, "GET", ""), (303, "GET", ""), (307, "POST", "x"), (308, "POST", "x")],
)
async def test_redirects_change_post_to_get_like_curl(
    servers: ServerThread, code: int, method: str, body: str
) -> None:
    """301/302/303 turn POST into GET without a body; 307/308 keep method and body."""
    key = f"post-{code}"
    target = f"{servers.base}/echo?key={key}"
    line = json_line(
        url=f"{servers.base}/redirect-to?code={code}&url={quote(target)}", method="POST", body="x"
    )
    record = await one_spec(line)
    assert record["ok"] is True
    (seen,) = servers.state.echoes[key]
    assert (seen["method"], seen["body"]) == (method, body)


async def test_credentials_are_dropped_when_a_redirect_changes_origin(
    servers: ServerThread,
) -> None:
    """Authorization and Cookie reach the first origin, not another host or port."""
    other_origin = (
        f"http://localhost:{servers.ports['app']}/echo?key=cross"  # same port, other host
    )
    same_origin = f"{servers.base}/echo?key=same"
    headers = {"Authorization": "Bearer secret", "Cookie": "s=1", "X-Keep": "1"}
    for target in (other_origin, same_origin):
        url = f"{servers.base}/redirect-to?code=302&url={quote(target)}"
        assert (await one_spec(json_line(url=url, headers=headers)))["ok"] is True
    (cross,) = servers.state.echoes["cross"]
    (same,) = servers.state.echoes["same"]
    assert "Authorization" not in cross["headers"]
    assert "Cookie" not in cross["headers"]
    assert cross["headers"]["X-Keep"] == "1"
    assert same["headers"]["Authorization"] == "Bearer secret"


def json_line(**fields: Any) -> bytes:
    return orjson.dumps(fields)


async def one_spec(line: bytes, **options: Any) -> dict[str, Any]:
    config = Config(**{**FAST, **options})
    item = RequestParser(config).parse(line)
    assert isinstance(item, FetchSpec)
    results = [result async for result in afetch.stream([item], config)]
    (record,) = records_of(results)
    return record


async def test_a_server_that_never_answers_times_out_in_time(servers: ServerThread) -> None:
    """No response at all ends as 'timeout' within the limit."""
    started = time.monotonic()
    record = await one(f"{servers.base}/hang", timeout=0.5)
    assert record["error"]["type"] == "timeout"
    assert time.monotonic() - started < 2


async def test_a_trickling_body_times_out_in_time(servers: ServerThread) -> None:
    """The timeout covers the body too: a byte every 100 ms does not keep it alive."""
    started = time.monotonic()
    record = await one(f"{servers.base}/trickle", timeout=0.6)
    assert record["error"]["type"] == "timeout"
    assert record["status"] == 200  # the headers did arrive
    assert time.monotonic() - started < 2


async def test_a_silent_raw_server_times_out(servers: ServerThread) -> None:
    """A socket that accepts and never speaks is a timeout."""
    assert (await one(servers.raw("silent"), timeout=0.5))["error"]["type"] == "timeout"


async def test_connection_refused_is_connect(servers: ServerThread) -> None:
    """A closed port is 'connect'."""
    record = await one(f"http://127.0.0.1:{closed_port()}/")
    assert record["error"]["type"] == "connect"
    assert "refused" in record["error"]["message"].lower()


async def test_unknown_host_is_dns() -> None:
    """A .invalid host never resolves: 'dns'."""
    assert (await one("http://no-such-host.invalid/"))["error"]["type"] == "dns"


@pytest.mark.parametrize("name", ["garbage", "short", "reset", "empty"])
async def test_malformed_responses_are_protocol(servers: ServerThread, name: str) -> None:
    """Garbage status line, short body, reset mid-body, empty reply: 'protocol'."""
    assert (await one(servers.raw(name)))["error"]["type"] == "protocol"


@pytest.mark.parametrize(
    "url_of", [lambda s: f"{s.base}/huge-header", lambda s: s.raw("huge-status")]
)
async def test_huge_headers_are_too_large(servers: ServerThread, url_of: Any) -> None:
    """A 100 KiB header or status line is 'too_large', not protocol and not a crash."""
    record = await one(url_of(servers))
    assert record["error"]["type"] == "too_large"


async def test_max_body_truncates_and_stays_ok(servers: ServerThread) -> None:
    """Reading stops at --max-body with truncated: true; ok is not affected."""
    record = await one(f"{servers.base}/bytes/300000", max_body=100_000)
    assert record["ok"] is True
    assert record["size"] == 100_000
    assert record["truncated"] is True
    exact = await one(f"{servers.base}/bytes/100000", max_body=100_000)
    assert exact["size"] == 100_000
    assert "truncated" not in exact


async def test_gzip_bomb_is_capped_after_decompression(servers: ServerThread) -> None:
    """200 MiB of gzip'd zeros stop at the cap and memory does not follow."""
    tracemalloc.start()
    try:
        record = await one(f"{servers.base}/gzip-bomb", max_body=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record["truncated"] is True
    assert record["size"] == 1_000_000
    assert peak < 8 * 1024 * 1024  # the cap and a few inflate pieces, not 200 MiB


async def test_503_twice_then_200_succeeds_on_the_third_attempt(servers: ServerThread) -> None:
    """Retryable statuses are retried with backoff; attempts counts them."""
    record = await one(f"{servers.base}/flaky/three-tries?fail=2", retries=2, backoff_base=0.01)
    assert record["ok"] is True
    assert record["attempts"] == 3


async def test_retries_run_out_and_the_last_response_is_recorded(servers: ServerThread) -> None:
    """With too few retries the final 503 is the record."""
    record = await one(f"{servers.base}/flaky/give-up?fail=5", retries=1, backoff_base=0.01)
    assert record["status"] == 503
    assert record["attempts"] == 2


async def test_429_retry_after_is_waited_for(servers: ServerThread) -> None:
    """Retry-After: 1 makes the retry wait about a second."""
    started = time.monotonic()
    record = await one(f"{servers.base}/flaky/ra?fail=1&status=429&after=1", retries=2)
    assert record["ok"] is True
    assert record["attempts"] == 2
    assert 0.9 < time.monotonic() - started < 3


async def test_a_retry_after_beyond_the_maximum_ends_retries(servers: ServerThread) -> None:
    """A demand longer than --retry-max-wait is recorded as it came."""
    record = await one(
        f"{servers.base}/flaky/ra-long?fail=1&status=429&after=60", retries=2, retry_max_wait=5
    )
    assert record["status"] == 429
    assert record["attempts"] == 1


async def test_post_is_not_retried_without_retry_all(servers: ServerThread) -> None:
    """Non-idempotent methods are not retried unless asked."""
    record = await one(f"{servers.base}/status/503", retries=3, method="POST")
    assert record["attempts"] == 1


async def test_connect_timeout_applies_to_getting_a_connection() -> None:
    """A listener whose backlog is full never completes the handshake: --connect-timeout fires."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = [socket.socket() for _ in range(8)]
    try:
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        started = time.monotonic()
        record = await one(f"http://127.0.0.1:{port}/", connect_timeout=0.4, timeout=5)
        assert record["error"]["type"] == "timeout"
        assert "connect" in record["error"]["message"].lower()
        assert time.monotonic() - started < 2
    finally:
        for sock in [*fillers, listener]:
            sock.close()


async def test_a_redirect_to_another_scheme_is_protocol(servers: ServerThread) -> None:
    """A Location pointing at ftp:// is the server's fault: 'protocol', not a crash."""
    record = await one(f"{servers.base}/redirect-to?code=302&url={quote('ftp://files.example/x')}")
    assert record["error"]["type"] == "protocol"
    assert record["redirects"][0]["status"] == 302


async def test_https_to_a_plain_http_port_is_tls(servers: ServerThread) -> None:
    """Speaking TLS to a server that does not is a 'tls' failure."""
    port = servers.ports["app"]
    assert (await one(f"https://127.0.0.1:{port}/ok"))["error"]["type"] == "tls"
