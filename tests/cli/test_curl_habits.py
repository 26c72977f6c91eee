"""Habits from curl mean what they mean in curl."""

from __future__ import annotations

from pathlib import Path

import pytest

from afetch.config import parse_header
from tests.conftest import run_cli
from tests.server import ServerThread


def _sent(servers: ServerThread, key: str, *args: str) -> dict[str, str]:
    run = run_cli(f"{servers.base}/echo?key={key}", *args)
    assert run.returncode == 0, run.stderr
    (received,) = servers.state.echoes[key]
    headers: dict[str, str] = received["headers"]
    return headers


def test_header_forms_follow_curl() -> None:
    """-H 'Name: v', 'Name:' and 'Name;' mean what they mean to curl."""
    assert parse_header("Accept:") == ("Accept", None)  # remove
    assert parse_header("X-Empty;") == ("X-Empty", "")  # send empty
    assert parse_header("X-A: b") == ("X-A", "b")


def test_a_header_with_nothing_after_the_colon_is_not_sent(
    servers: ServerThread, each_transport: str
) -> None:
    """-H 'Accept:' removes a default header, in both transports."""
    sent = _sent(servers, f"rm-{each_transport}", "-H", "Accept:", "-H", "User-Agent:")
    assert "Accept" not in sent
    assert "User-Agent" not in sent
    assert "Accept-Encoding" in sent


def test_a_header_with_a_semicolon_is_sent_empty(
    servers: ServerThread, each_transport: str
) -> None:
    """-H 'X-Empty;' sends the header with an empty value."""
    sent = _sent(servers, f"empty-{each_transport}", "-H", "X-Empty;")
    assert sent["X-Empty"] == ""


def test_an_empty_user_agent_sends_none(servers: ServerThread, each_transport: str) -> None:
    """-A '' sends no User-Agent at all, as curl does."""
    assert "User-Agent" not in _sent(servers, f"ua-{each_transport}", "-A", "")
    assert _sent(servers, f"ua2-{each_transport}", "-A", "probe/2")["User-Agent"] == "probe/2"


def test_removing_the_content_type_json_would_send(
    servers: ServerThread, each_transport: str
) -> None:
    """-H 'Content-Type:' with --json sends no Content-Type."""
    sent = _sent(servers, f"ct-{each_transport}", "--json", "{}", "-H", "Content-Type:")
    assert sent.get("Content-Type") in (None, "application/octet-stream")
    assert sent["Accept"] == "application/json"


def test_curl_aliases(servers: ServerThread) -> None:
    """-m, -s and --retry mean what they mean to curl."""
    run = run_cli(f"{servers.base}/slow?s=2", "-m", "0.3", "--retry", "0", "-s", status=1)
    (record,) = run.records
    assert record["error"]["type"] == "timeout"
    assert record["attempts"] == 1
    assert run.stderr == ""


def test_curl_option_names_and_habits_are_accepted(servers: ServerThread) -> None:
    """A curl command line's options mean the same here: -fsSL, --compressed, -Z,
    --location, --request, --max-redirs, --parallel-max, --data-binary."""
    run = run_cli(
        f"{servers.base}/redirect/2", "-fsSL", "--compressed", "-Z", "--parallel-max", "3",
        "--location", "--max-redirs", "1", "--request", "GET", status=1,
    )  # fmt: skip
    (record,) = run.records
    assert record["error"]["type"] == "too_many_redirects"  # --max-redirs 1 < 2
    assert run.stderr == ""  # -s
    (posted,) = run_cli(
        f"{servers.base}/echo?key=binary", "--data-binary", "a=1", "--data-binary", "b=2"
    ).records
    assert posted["method"] == "POST"
    assert servers.state.echoes["binary"][0]["body"] == "a=1&b=2"


def test_dash_i_is_a_head_request(servers: ServerThread) -> None:
    """-I sends HEAD, as curl's; with another -X or a body it is a usage error."""
    (record,) = run_cli(f"{servers.base}/ok", "-I").records
    assert (record["method"], record["status"], record["ok"]) == ("HEAD", 200, True)
    for extra, words in [(("-X", "POST"), "-X POST"), (("-d", "a=b"), "no body")]:
        assert words in run_cli(f"{servers.base}/ok", "-I", *extra, status=2).stderr


def test_a_file_given_as_a_url_gets_a_hint(tmp_path: Path) -> None:
    """A file name given as a URL is a usage error that suggests -i."""
    listed = tmp_path / "urls.txt"
    listed.write_text("http://a.test/\n")
    run = run_cli(str(listed), status=2)
    assert run.returncode == 2
    assert f"is a file, not a URL: did you mean -i {listed}?" in run.stderr
    dash = run_cli("-", status=2)
    assert dash.returncode == 2
    assert "did you mean -i -" in dash.stderr


@pytest.mark.parametrize(
    ("proxy", "ok"),
    [
        ("notaurl", False),
        ("socks5://127.0.0.1:1080", True),
        ("ftp://127.0.0.1:21", False),
        ("http://", False),
        ("127.0.0.1:3128", True),
        ("http://proxy.test", True),
        ("", True),
    ],
)
def test_proxy_must_be_a_url_afetch_supports(proxy: str, ok: bool) -> None:
    """--proxy takes an http(s) URL or host:port, else a usage error."""
    from afetch.config import parse_proxy

    if ok:
        assert parse_proxy(proxy) == proxy
    else:
        with pytest.raises(ValueError, match=r"prox(y|ies)"):
            parse_proxy(proxy)
    if not ok:
        run = run_cli("http://127.0.0.1:1/", "--proxy", proxy, status=2)
        assert run.returncode == 2
        assert "--proxy" in run.stderr
