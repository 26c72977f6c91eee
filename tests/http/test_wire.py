"""What afetch puts on the wire: every request byte validated, framing afetch's own.

A recording server keeps the exact bytes of each connection, so a test fails
if an injected header or a second (smuggled) request ever reaches a server.
Both transports are held to the same contract.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from multidict import CIMultiDict
from yarl import URL

from afetch.cli import command
from afetch.http.base import Request
from afetch.http.request import HeadRenderer, check_header, check_host, check_method
from tests.conftest import lines, run_cli, transport_free
from tests.server import RECORDED, ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def recorded(servers: ServerThread, key: str, *args: str, stdin: bytes = b"") -> bytes:
    """Run afetch against the recording server's /KEY; the bytes of its one connection."""
    url = servers.raw("record") + key
    RECORDED.pop(f"/{key}", None)
    run = run_cli(*args, *([] if stdin else [url]), stdin=stdin)
    assert run.returncode == 0, (run.stderr, run.stdout)
    (data,) = RECORDED[f"/{key}"]
    return data


def head_lines(data: bytes) -> list[bytes]:
    return data.partition(b"\r\n\r\n")[0].split(b"\r\n")


def field_values(data: bytes, name: bytes) -> list[bytes]:
    prefix = name.lower() + b":"
    return [
        line.partition(b":")[2].strip()
        for line in head_lines(data)[1:]
        if line.lower().startswith(prefix)
    ]


def test_a_user_host_is_the_one_host(servers: ServerThread) -> None:
    """-H 'Host: x' replaces afetch's Host: exactly one line, the user's value (as curl)."""
    data = recorded(servers, "host", "-H", "Host: example.test")
    assert field_values(data, b"Host") == [b"example.test"]


def test_a_user_content_length_is_replaced_by_the_real_one(servers: ServerThread) -> None:
    """A Content-Length from the user is replaced by the body's own."""
    data = recorded(servers, "length", "-H", "Content-Length: 1", "-d", "abcdef")
    assert field_values(data, b"Content-Length") == [b"6"]
    assert data.endswith(b"\r\n\r\nabcdef")


def test_a_user_chunked_encoding_chunk_encodes_the_body(servers: ServerThread) -> None:
    """Never Transfer-Encoding and Content-Length together: the body is chunked, as curl does."""
    data = recorded(servers, "chunked", "-H", "Transfer-Encoding: chunked", "-d", "abc")
    assert field_values(data, b"Transfer-Encoding") == [b"chunked"]
    assert field_values(data, b"Content-Length") == []
    assert data.partition(b"\r\n\r\n")[2] == b"3\r\nabc\r\n0\r\n\r\n"


def test_percent_encoded_bytes_stay_encoded(servers: ServerThread) -> None:
    """Percent-encoded CR, LF and NUL stay encoded: nothing is injected."""
    url = servers.raw("record") + "enc%0D%0AX-Injected:%201?q=%00"
    RECORDED.pop("/enc%0D%0AX-Injected:%201?q=%00", None)
    run = run_cli(url)
    assert run.returncode == 0, run.stderr
    (data,) = RECORDED["/enc%0D%0AX-Injected:%201?q=%00"]
    assert head_lines(data)[0] == b"GET /enc%0D%0AX-Injected:%201?q=%00 HTTP/1.1"
    assert b"\r\nX-Injected" not in data


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("http://127.0.0.1\0.trusted.example/", "contains '\\\\x00'"),
        ("http://[:::1]/", "not an IPv6 address"),
        ("http://127.0.0.1:0/", "port 0"),
        ("http://a..b/", "empty label"),
        ("http://exa%00mple/", "contains '%'"),
        ('{"url": "http://127.0.0.1:1/", "headers": {"X": "a\\u0000b"}}', "control character"),
        ('{"url": "http://127.0.0.1:1/", "headers": {"X": "a\\r\\nY: 1"}}', "control character"),
        ('{"url": "http://127.0.0.1:1/", "headers": {"X Y": "1"}}', "not a token"),
        ('{"url": "http://127.0.0.1:1/", "method": "GET /x HTTP/1.1\\r\\n"}', "not an HTTP method"),
        ('{"url": "http://127.0.0.1:1/", "headers": {"Transfer-Encoding": "gzip"}}', "chunked"),
    ],
)
@transport_free
def test_bad_input_lines_are_invalid_input(line: str, fragment: str) -> None:
    """Lines that would inject or cannot be sent are invalid_input records."""
    run = run_cli("--no-summary", stdin=lines(line), status=1)
    (record,) = run.records
    assert record["error"]["type"] == "invalid_input"
    assert record["attempts"] == 0
    assert fragment.replace("\\\\", "\\") in record["error"]["message"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-A", "x\r\nX-Injected: 1"], "--user-agent"),
        (["-A", "x\0"], "--user-agent"),
        (["-X", "GET / HTTP/1.1\r\n"], "--method"),
        (["-X", "GÉT"], "--method"),
        (["-H", "X: a\0b"], "--header"),
        (["-H", "X Y: 1"], "--header"),
        (["-H", "Transfer-Encoding: gzip"], "--header"),
        (["-b", "a=1\r\nX: 2"], "control character"),
        (["-u", "ann:pw\nX: 1"], "control character"),
    ],
)
@transport_free
def test_options_that_would_inject_are_usage_errors(args: list[str], fragment: str) -> None:
    """Options carrying CR, LF or NUL are usage errors before anything is sent."""
    result = CliRunner().invoke(command, [*args, "http://127.0.0.1:1/"])
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr


@transport_free
def test_generated_requests_never_put_a_control_character_on_the_wire() -> None:
    """A property test: whatever the validator lets through renders to a clean head."""
    rng = random.Random(1103)
    alphabet = [chr(c) for c in range(128)] + ["é", "\u2028", "ÿ"]
    renderer = HeadRenderer([("User-Agent", "afetch/test")])
    rendered = 0
    for _ in range(3000):

        def text(n: int) -> str:
            """Mostly plain characters, now and then anything at all."""
            return "".join(
                rng.choice(alphabet) if rng.random() < 0.08 else rng.choice("abcxyz019-")
                for _ in range(rng.randint(1, n))
            )

        name, value, method, host = text(6), text(12), text(5), text(8)
        try:
            check_method(method)
            check_header(name, value)
            check_host(host.lower())
            url = URL.build(scheme="http", host=host.lower(), path="/" + text(8))
        except ValueError:
            continue
        request = Request(method, url, CIMultiDict([(name, value)]))
        head, _ = renderer.render(request, url.raw_host or "", 80)
        rendered += 1
        for line in head.split(b"\r\n"):
            assert not any((b < 32 and b != 9) or b == 127 for b in line), (head, line)
        assert head.count(b"\r\n\r\n") == 1
        assert head.endswith(b"\r\n\r\n")
    assert rendered > 300


def test_json_line_headers_reach_the_server_as_given(servers: ServerThread) -> None:
    """A JSON line's headers (its Host too) reach the server as given."""
    line = json.dumps(
        {"url": servers.raw("record") + "json-host", "headers": {"Host": "a.test", "X-A": "1\t2"}}
    )
    data = recorded(servers, "json-host", stdin=lines(line))
    assert field_values(data, b"Host") == [b"a.test"]
    assert field_values(data, b"X-A") == [b"1\t2"]


# -- responses: strictly framed ------------------------------------------------------

#: Where aiohttp decides and afetch cannot (README: "Differences between the clients").
AIOHTTP_DIFFERENCES = {
    # aiohttp parses a whole packet: bytes after a complete response that do not form
    # another one fail the response they arrived with (protocol), not just the connection.
    "junk-after-chunk": "the answer is recorded as protocol",
    # aiohttp's pool does not look at a connection's bytes while it is idle.
    "unsolicited": "an unsolicited response on an idle connection answers the next request",
}


def differs(transport: str, name: str) -> bool:
    return transport == "aiohttp" and name in AIOHTTP_DIFFERENCES


def bodies(
    servers: ServerThread, name: str, *items: str, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    run = run_cli("-c", "1", "--body", "--headers", *extra, stdin=lines(*items), status=None)
    return sorted(run.records, key=lambda r: r["index"])


@pytest.mark.parametrize("name", ["desync", "junk-after-chunk"])
def test_bytes_after_a_response_never_reach_another_request(
    servers: ServerThread, name: str, each_transport: str
) -> None:
    """A second response in the same packet, or junk after the last chunk: the first is
    the answer, and the connection is not used again."""
    url = servers.raw(name)
    records = bodies(servers, name, *[url] * 3)
    if differs(each_transport, name):
        assert {r["error"]["type"] for r in records} == {"protocol"}
        return
    for record in records:
        assert record["ok"], record
        assert record["body"] == "first"
        assert record["reason"] == "OK"
        assert "X-Smuggled" not in record["headers"]


def test_body_bytes_after_a_head_response_do_not_poison_the_next_request(
    servers: ServerThread, each_transport: str
) -> None:
    """Body bytes after a HEAD answer never reach the next request."""
    url = servers.raw("head-with-body")
    head = json.dumps({"url": url, "method": "HEAD"})
    records = bodies(servers, "head-with-body", head, url, url)
    if differs(each_transport, "head-with-body"):
        assert records[0]["error"]["type"] == "protocol"
    else:
        assert records[0]["status"] == 200
    assert [r["status"] for r in records[1:]] == [200, 200]
    assert [r.get("body") for r in records[1:]] == ["first", "first"]


def test_an_unsolicited_response_on_an_idle_connection_is_not_an_answer(
    servers: ServerThread, each_transport: str
) -> None:
    """An unsolicited response on an idle connection is not the next answer (lean)."""
    url = servers.raw("unsolicited")
    records = bodies(servers, "unsolicited", url, url, extra=("--rate", "4/s"))
    if differs(each_transport, "unsolicited"):  # the documented difference, held to it
        assert [r["body"] for r in records] == ["first", "smuggled"]
        return
    assert [r["body"] for r in records] == ["first", "first"]


def test_a_status_outside_100_599_is_protocol(servers: ServerThread) -> None:
    """A status outside 100-599 is protocol, not a response."""
    run = run_cli("--retries", "0", servers.raw("status-099"), status=1)
    (record,) = run.records
    assert record["error"]["type"] == "protocol"
    assert "099" in record["error"]["message"]


def test_obs_fold_is_unfolded(servers: ServerThread) -> None:
    """A folded header line is unfolded into spaces."""
    run = run_cli("--headers", servers.raw("obs-fold"))
    (record,) = run.records
    assert record["ok"], record
    assert " ".join(record["headers"]["x-folded"].split()) == "one two three"


def test_non_utf8_bytes_anywhere_in_a_head_are_latin1_text(servers: ServerThread) -> None:
    """Reason, Content-Type, any header: never a crash, the same text in both transports."""
    run = run_cli("--headers", "--body", servers.raw("non-utf8-head"))
    assert run.returncode == 0, run.stderr
    (record,) = run.records
    assert record["reason"] == "Réasonÿ"
    assert record["content_type"] == "text/plain; charset=ÿþ"
    assert record["headers"]["x-v"] == "Ã(ÿ"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("tls-eof", "closed the connection during the handshake"),
        ("tls-plain-http", "did not answer with TLS"),
    ],
)
def test_tls_failures_are_tls_and_say_what_happened(
    servers: ServerThread, name: str, words: str
) -> None:
    """A TLS failure is tls with a sentence saying what happened."""
    url = servers.raw(name).replace("http://", "https://")
    run = run_cli("--retries", "0", url, status=1)
    (record,) = run.records
    assert record["error"]["type"] == "tls", record
    assert words in record["error"]["message"]


def test_an_answer_before_the_upload_ends_is_recorded(
    servers: ServerThread, tmp_path: Path
) -> None:
    """A 413 sent (and the connection closed) after the head of a 16 MB upload: a 413
    record, one attempt — not "closed without a response"."""
    payload = tmp_path / "big.bin"
    payload.write_bytes(b"\0" * (16 << 20))
    run = run_cli("--retries", "2", "-d", f"@{payload}", servers.raw("early-413"), status=1)
    (record,) = run.records
    assert (record["status"], record["attempts"]) == (413, 1), record


def test_an_answer_sent_before_the_request_is_read_is_the_response(
    servers: ServerThread,
) -> None:
    """A server that answers 503 and closes as soon as it accepts (load balancers do):
    every request records that 503, as curl does, never "closed without a response"."""
    url = servers.raw("answer-at-accept")
    # --no-adaptive: the 503s would slow the host to one request at a time.
    run = run_cli(
        "-c", "20", "--retries", "0", "--body", "--no-adaptive", stdin=lines(*[url] * 200),
        status=1,
    )  # fmt: skip
    assert len(run.records) == 200
    for record in run.records:
        assert (record["status"], record["body"], record["attempts"]) == (503, "busy", 1), record
        assert record["error"]["type"] == "http"


def test_the_query_is_sent_as_written(servers: ServerThread) -> None:
    """%2F, %2B and a lower-case escape stay as they were (a signed URL's bytes); only
    what may not appear in a URL is encoded (é, a bare %). url and final_url say the same."""
    query = "s=a%2Fb%2Bc%3d&path=%2Fx&n=caf%C3%A9&p=100%"
    url = servers.raw("record") + "exact?" + query.replace("%C3%A9", "é")
    sent = "s=a%2Fb%2Bc%3d&path=%2Fx&n=caf%C3%A9&p=100%25"
    RECORDED.pop("/exact?" + sent, None)
    run = run_cli(url)
    (record,) = run.records
    (data,) = RECORDED["/exact?" + sent]
    assert data.startswith(f"GET /exact?{sent} HTTP/1.1\r\n".encode())
    assert record["url"].endswith(f"/exact?{sent}")
    assert record["final_url"] == record["url"]


def test_a_redirect_keeps_its_query_as_written(servers: ServerThread) -> None:
    """A redirect's query keeps its escapes in final_url and on the wire."""
    run = run_cli(f"{servers.base}/redirect-to?url=/echo%3Fs%3Da%252Fb", "--body")
    (record,) = run.records
    assert record["ok"], record
    assert record["final_url"] == f"{servers.base}/echo?s=a%2Fb"


def test_a_location_is_trimmed_and_its_bytes_kept(servers: ServerThread) -> None:
    """Blanks around it go; a Latin-1 byte and a space inside are sent percent-encoded."""
    run = run_cli("--body", servers.raw("odd-location"))
    (record,) = run.records
    assert record["ok"], record
    assert record["body"] == "/target?q=caf%E9&s=a%20b"
    assert record["final_url"].endswith("/target?q=caf%E9&s=a%20b")
