"""HTTP/2 in the lean client: ALPN and prior knowledge, one multiplexed connection per
origin, replays the server allows, and peers that misbehave — against real h2 servers."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import run_cli
from tests.h2server import H2ServerThread
from tests.server import ServerThread


@pytest.fixture(scope="module")
def h2servers(tmp_path_factory: pytest.TempPathFactory) -> H2ServerThread:
    return H2ServerThread(tmp_path_factory.mktemp("h2"))


def test_alpn_picks_h2_over_tls(h2servers: H2ServerThread) -> None:
    """--http2 offers h2 by ALPN and records http_version 2 with its TLS time."""
    run = run_cli("--http2", "--cacert", str(h2servers.ca), h2servers.url("tls", "/ok"))
    (record,) = run.records
    assert record["ok"] is True, record
    assert record["http_version"] == "2"
    assert record["timing"]["tls_ms"] is not None  # the request that opened the connection


def test_prior_knowledge_speaks_h2c(h2servers: H2ServerThread) -> None:
    """--http2-prior-knowledge speaks HTTP/2 at once over plain http (h2c)."""
    run = run_cli("--http2-prior-knowledge", h2servers.url("h2c", "/status/204"))
    (record,) = run.records
    assert (record["status"], record["http_version"]) == (204, "2")


def test_a_server_without_h2_gets_http_1_1(servers: ServerThread) -> None:
    """ALPN offered, not taken (aiohttp's server): the request goes on as HTTP/1.1."""
    ca = str(servers.tls_dir / "ca.pem") if servers.tls_dir else ""
    run = run_cli("--http2", "--cacert", ca, f"{servers.https()}/ok", f"{servers.https()}/ok")
    assert [r["http_version"] for r in run.records] == ["1.1", "1.1"]
    assert all(r["ok"] for r in run.records)
    assert not any("downgraded" in r for r in run.records)  # negotiated, not downgraded


def test_alpn_http_1_1_from_an_h2_capable_server(h2servers: H2ServerThread) -> None:
    """Without --http2 no h2 is offered: the same server answers over HTTP/1.1."""
    before = h2servers.state.h1_requests
    run = run_cli("--cacert", str(h2servers.ca), h2servers.url("tls", "/ok"))
    (record,) = run.records
    assert record["http_version"] == "1.1"
    assert h2servers.state.h1_requests == before + 1


def test_many_requests_share_one_connection(h2servers: H2ServerThread) -> None:
    """200 requests at -c 50 to one origin: one connection, streams in parallel."""
    urls = [h2servers.url("tls", f"/slow?s=0.02&i={i}") for i in range(200)]
    before = h2servers.state.connections["tls"]
    run = run_cli("--http2", "--cacert", str(h2servers.ca), "-c", "50", *urls)
    records = run.records
    assert len(records) == 200
    assert all(r["ok"] for r in records)
    assert h2servers.state.connections["tls"] - before == 1
    assert sum(not r["reused"] for r in records) == 1
    assert all(r["http_version"] == "2" for r in records)


def test_the_servers_stream_limit_holds(h2servers: H2ServerThread) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS 3 and -c 20: never more than 3 streams on a
    connection; more connections (at most 6) carry the rest, not one per request."""
    state = h2servers.state
    state.max_active = state.max_active_one_connection = 0
    before = state.connections["few-streams"]
    urls = [h2servers.url("few-streams", f"/slow?s=0.05&i={i}") for i in range(60)]
    run = run_cli("--http2-prior-knowledge", "-c", "20", *urls)
    assert all(r["ok"] for r in run.records)
    assert state.max_active_one_connection == 3
    assert 2 <= state.connections["few-streams"] - before <= 6
    assert state.max_active > 3


def test_per_host_keeps_one_connection_within_the_servers_limit(
    h2servers: H2ServerThread,
) -> None:
    """--per-host 3 and a server that allows 3: one connection is enough, one is used."""
    state = h2servers.state
    before = state.connections["few-streams"]
    urls = [h2servers.url("few-streams", f"/slow?s=0.02&i={i}") for i in range(30)]
    run = run_cli("--http2-prior-knowledge", "-c", "20", "--per-host", "3", *urls)
    assert all(r["ok"] for r in run.records)
    assert state.connections["few-streams"] - before == 1


def test_waiting_for_a_stream_does_not_spend_the_timeout(h2servers: H2ServerThread) -> None:
    """30 answers of 0.3 s at -c 30 where 6 connections of 3 streams carry 18, -t 0.5s:
    those that waited for a stream still had their whole 0.5 s once they got one."""
    urls = [h2servers.url("few-streams", f"/slow?s=0.3&w={i}") for i in range(30)]
    run = run_cli("--http2-prior-knowledge", "-c", "30", "-t", "0.5s", "--retries", "0", *urls)
    assert all(r["ok"] for r in run.records)
    assert max(r["elapsed_ms"] for r in run.records) > 550  # a stream's wait, then 0.3 s


def test_goaway_moves_the_rest_to_a_new_connection(h2servers: H2ServerThread) -> None:
    """GOAWAY after 10 streams: every request is answered, none counts a second attempt."""
    before = h2servers.state.connections["goaway"]
    urls = [h2servers.url("goaway", f"/slow?s=0.01&i={i}") for i in range(35)]
    run = run_cli("--http2-prior-knowledge", "-c", "5", *urls)
    records = run.records
    assert all(r["ok"] for r in records), [r["error"] for r in records if not r["ok"]][:3]
    assert {r["attempts"] for r in records} == {1}
    assert h2servers.state.connections["goaway"] - before >= 4


def test_a_reset_stream_is_that_requests_protocol_failure(h2servers: H2ServerThread) -> None:
    """RST_STREAM fails that request as protocol; the other stream's answer is ok."""
    run = run_cli(
        "--http2-prior-knowledge",
        "--retries",
        "0",
        h2servers.url("h2c", "/reset"),
        h2servers.url("h2c", "/ok"),
        status=1,
    )
    reset, ok = sorted(run.records, key=lambda r: r["index"])
    assert reset["error"]["type"] == "protocol"
    assert "INTERNAL_ERROR" in reset["error"]["message"]
    assert ok["ok"] is True


def test_a_refused_stream_is_sent_again(h2servers: H2ServerThread) -> None:
    """REFUSED_STREAM: not processed, so sent again at once, within the same attempt."""
    run = run_cli("--http2-prior-knowledge", "--retries", "0", h2servers.url("h2c", "/refuse/a"))
    (record,) = run.records
    assert record["ok"] is True
    assert record["attempts"] == 1


def test_http_1_1_required_downgrades_the_origin(h2servers: H2ServerThread) -> None:
    """HTTP_1_1_REQUIRED: the request goes again over HTTP/1.1 (the server's canned answer)."""
    run = run_cli("--http2", "--cacert", str(h2servers.ca), h2servers.url("tls", "/h11"))
    (record,) = run.records
    assert record["ok"] is True
    assert record["http_version"] == "1.1"
    assert record["downgraded"] is True


def test_requests_waiting_for_a_connection_share_its_failure(h2servers: H2ServerThread) -> None:
    """10 requests wait for the one connection being opened to an origin; when it
    fails they fail with it, at once, instead of each trying again in turn."""
    before = h2servers.state.connections["slam"]
    urls = [h2servers.url("slam", f"/?i={i}") for i in range(10)]
    run = run_cli("--http2", "--cacert", str(h2servers.ca), "--retries", "0", *urls, status=1)
    assert {r["error"]["type"] for r in run.records} == {"tls"}
    assert h2servers.state.connections["slam"] - before == 1
    assert max(r["elapsed_ms"] for r in run.records) < 1000


def test_a_large_body_is_not_held_back_by_flow_control(h2servers: H2ServerThread) -> None:
    """5 MB over one stream: windows are acknowledged, the body arrives whole."""
    size = 5 * 1024 * 1024
    run = run_cli(
        "--http2-prior-knowledge",
        "--hash",
        "--max-body",
        "10MB",
        h2servers.url("h2c", f"/bytes/{size}"),
    )
    (record,) = run.records
    expected = hashlib.sha256(bytes(range(256)) * (size // 256)).hexdigest()
    assert (record["size"], record["sha256"]) == (size, expected)


def test_max_body_cuts_a_stream_and_the_connection_goes_on(h2servers: H2ServerThread) -> None:
    """--max-body cancels that stream only; the next request reuses the connection."""
    run = run_cli(
        "--http2-prior-knowledge",
        "--max-body",
        "100KB",
        "-c",
        "1",
        h2servers.url("h2c", "/bytes/2000000"),
        h2servers.url("h2c", "/ok"),
    )
    big, ok = sorted(run.records, key=lambda r: r["index"])
    assert big["truncated"] is True
    assert big["size"] == 100_000
    assert ok["ok"] is True
    assert ok["reused"] is True


def test_the_header_list_is_http2s(h2servers: H2ServerThread) -> None:
    """Pseudo-headers from the URL, the user's Host as :authority, lower-case names, no
    connection-specific fields, the body's length."""
    run = run_cli(
        "--http2-prior-knowledge",
        "-H",
        "Host: example.test",
        "-H",
        "Connection: keep-alive",
        "-H",
        "X-Mixed-Case: 1",
        "--data",
        "x" * 70_000,
        "--body",
        h2servers.url("h2c", "/echo?q=1"),
    )
    (record,) = run.records
    seen = json.loads(record["body"])
    names = [name for name, _ in seen["headers"]]
    fields = dict(seen["headers"])
    assert names[:4] == [":method", ":scheme", ":authority", ":path"]
    assert fields[":authority"] == "example.test"
    assert fields[":path"] == "/echo?q=1"
    assert fields[":method"] == "POST"
    assert "connection" not in fields
    assert "host" not in fields
    assert fields["x-mixed-case"] == "1"
    assert fields["content-length"] == "70000"
    assert seen["body"] == 70_000


@pytest.mark.parametrize(
    ("server", "said"),
    [
        ("ping-flood", "too many control frames"),
        ("settings-flood", "too many control frames"),
        ("continuation-flood", "continuation"),
    ],
)
def test_a_flood_ends_the_connection_not_the_run(
    h2servers: H2ServerThread, server: str, said: str
) -> None:
    """3 000 PINGs or SETTINGS, or 500 CONTINUATION frames: that request's protocol
    failure, quickly, and the run goes on."""
    run = run_cli(
        "--http2-prior-knowledge",
        "--retries",
        "0",
        "-t",
        "5s",
        h2servers.url(server),
        h2servers.url("h2c", "/ok"),
        status=1,
    )
    flooded, ok = sorted(run.records, key=lambda r: r["index"])
    assert flooded["error"]["type"] == "protocol"
    assert said in flooded["error"]["message"].lower()
    assert flooded["elapsed_ms"] < 4000
    assert ok["ok"] is True


def test_a_server_that_resets_every_stream(h2servers: H2ServerThread) -> None:
    """Every stream reset: one protocol record each, retried as asked, and the run ends."""
    urls = [h2servers.url("h2c", f"/reset?i={i}") for i in range(20)]
    run = run_cli("--http2-prior-knowledge", "--retries", "1", "-c", "10", *urls, status=1)
    assert len(run.records) == 20
    assert {r["error"]["type"] for r in run.records} == {"protocol"}
    assert {r["attempts"] for r in run.records} == {2}


def test_a_header_list_over_the_limits_fails_that_response(h2servers: H2ServerThread) -> None:
    """An oversized header list is that response's failure, not a hang or a crash."""
    run = run_cli(
        "--http2-prior-knowledge", "--retries", "0", h2servers.url("huge-headers"), status=1
    )
    (record,) = run.records
    assert record["error"]["type"] in ("protocol", "too_large"), record["error"]


def test_a_window_that_never_opens_times_out_in_send(h2servers: H2ServerThread) -> None:
    """A server that never opens its window: the upload times out with phase send."""
    run = run_cli(
        "--http2-prior-knowledge",
        "--retries",
        "0",
        "-t",
        "0.5s",
        "--data",
        "x" * 100_000,
        h2servers.url("no-window", "/echo"),
        status=1,
    )
    (record,) = run.records
    assert record["error"]["type"] == "timeout"
    assert record["error"]["phase"] == "send"


def test_a_hung_stream_times_out_alone(h2servers: H2ServerThread) -> None:
    """A stream that never answers times out; its neighbour on the connection is ok."""
    run = run_cli(
        "--http2-prior-knowledge",
        "--retries",
        "0",
        "-t",
        "0.5s",
        h2servers.url("h2c", "/hang"),
        h2servers.url("h2c", "/slow?s=0.1"),
        status=1,
    )
    hung, ok = sorted(run.records, key=lambda r: r["index"])
    assert hung["error"]["type"] == "timeout"
    assert ok["ok"] is True


def test_http2_is_the_lean_clients(servers: ServerThread) -> None:
    """--http2 with aiohttp or an HTTP proxy is a usage error; --http1.1 wins over it."""
    run = run_cli("--http2", "--http-client", "aiohttp", f"{servers.base}/ok", status=2)
    assert "--http-client aiohttp speaks HTTP/1.1 only" in run.stderr
    run = run_cli("--http2", "--proxy", servers.raw("proxy"), f"{servers.base}/ok", status=2)
    assert "does not go through HTTP proxies" in run.stderr
    run = run_cli("--http2", "--http1.1", f"{servers.base}/ok")
    assert run.records[0]["http_version"] == "1.1"


def test_expect_http_version(h2servers: H2ServerThread, servers: ServerThread) -> None:
    """--expect-http-version 2 holds over h2 and fails a response over HTTP/1.1; a line's
    expect.http_version replaces it."""
    h2 = h2servers.url("tls", "/ok")
    lines = [
        h2,
        f"{servers.base}/ok",
        json.dumps({"url": f"{servers.base}/ok", "expect": {"http_version": "1.1"}}),
        json.dumps({"url": h2, "expect": {"http_version": 1.1}}),
    ]
    run = run_cli(
        "--http2",
        "--cacert",
        str(h2servers.ca),
        "--expect-http-version",
        "2",
        stdin="\n".join(lines).encode(),
        status=1,
    )
    by_index = run.by_index()
    assert by_index[0]["ok"] is True
    assert by_index[1]["failed"] == ["HTTP/1.1, not HTTP/2"]
    assert by_index[2]["ok"] is True
    assert by_index[3]["failed"] == ["HTTP/2, not HTTP/1.1"]
    line = b'{"url": "http://a.test/", "expect": {"http_version": "3"}}\n'
    bad = run_cli(stdin=line, status=None)
    assert "expect.http_version must be one of 1.0, 1.1, 2" in bad.records[0]["error"]["message"]
