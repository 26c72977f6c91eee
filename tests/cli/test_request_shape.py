"""Request shaping from the command line and from JSON lines, as the server sees it."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from afetch.cli import command
from tests.conftest import lines, run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def seen(servers: ServerThread, key: str, *args: str, stdin: bytes = b"") -> dict[str, Any]:
    """Run afetch against /echo?key=KEY and return what the server received."""
    url = f"{servers.base}/echo?key={key}"
    run = run_cli(*args, *([] if stdin else [url]), stdin=stdin or b"")
    assert run.returncode == 0, run.stderr
    (received,) = servers.state.echoes[key]
    return received


def test_data_posts_form_encoded_and_joins_repeats(servers: ServerThread) -> None:
    """-d twice: POST, joined with '&', form content type (as curl)."""
    got = seen(servers, "data", "-d", "a=1", "-d", "b=2")
    assert got["method"] == "POST"
    assert got["body"] == "a=1&b=2"
    assert got["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_data_from_a_file_is_sent_byte_for_byte(servers: ServerThread, tmp_path: Path) -> None:
    """-d @FILE sends the file's bytes unchanged, newlines included."""
    payload = tmp_path / "payload.txt"
    payload.write_bytes(b"line one\nline two\n")
    assert seen(servers, "data-file", "-d", f"@{payload}")["body"] == "line one\nline two\n"


def test_json_sets_content_type_and_accept(servers: ServerThread, tmp_path: Path) -> None:
    """--json STRING and --json @FILE: POST with JSON Content-Type and Accept."""
    got = seen(servers, "json", "--json", '{"k": 1}')
    assert (got["method"], got["body"]) == ("POST", '{"k": 1}')
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["Accept"] == "application/json"
    doc = tmp_path / "doc.json"
    doc.write_text('{"from": "file"}')
    assert seen(servers, "json-file", "--json", f"@{doc}")["body"] == '{"from": "file"}'


def test_explicit_method_wins_over_the_implied_post(servers: ServerThread) -> None:
    """-X PUT -d x sends a PUT."""
    assert seen(servers, "put", "-X", "PUT", "-d", "x")["method"] == "PUT"


def test_user_and_cookie_become_headers(servers: ServerThread) -> None:
    """-u sends Basic auth; -b sends one Cookie header."""
    got = seen(servers, "creds", "-u", "ann:s3cr:et", "-b", "a=1; b=2")
    expected = base64.b64encode(b"ann:s3cr:et").decode()
    assert got["headers"]["Authorization"] == f"Basic {expected}"
    assert got["headers"]["Cookie"] == "a=1; b=2"


@pytest.mark.parametrize("with_user", [True, False])
def test_url_credentials_and_user_option_together(servers: ServerThread, with_user: bool) -> None:
    """URL userinfo is Basic auth; with -u too, -u wins (as in curl), never an internal error."""
    url = f"http://url:secret@127.0.0.1:{servers.ports['app']}/echo?key=both-{with_user}"
    run = run_cli(url, *(["-u", "opt:pw"] if with_user else []))
    (record,) = run.records
    assert record["ok"], record
    (got,) = servers.state.echoes[f"both-{with_user}"]
    who = b"opt:pw" if with_user else b"url:secret"
    assert got["headers"]["Authorization"] == f"Basic {base64.b64encode(who).decode()}"


def test_repeated_header_names_are_all_sent(servers: ServerThread) -> None:
    """-H with the same name twice sends both, in order."""
    got = seen(servers, "repeat", "-H", "X-Tag: one", "-H", "X-Tag: two")
    assert [v for k, v in got["header_list"] if k == "X-Tag"] == ["one", "two"]


def test_a_header_option_overrides_implied_headers(servers: ServerThread) -> None:
    """-H Content-Type beats the one --data implies."""
    got = seen(servers, "ct", "-d", "x", "-H", "Content-Type: text/plain")
    assert got["headers"]["Content-Type"] == "text/plain"


def test_json_lines_override_the_command_line(servers: ServerThread) -> None:
    """A JSON line's method, headers and json body replace the command line's."""
    line = json.dumps(
        {
            "url": f"{servers.base}/echo?key=line",
            "method": "PATCH",
            "headers": {"X-Who": "line"},
            "json": {"from": "line"},
        }
    )
    got = seen(servers, "line", "-d", "cli=1", "-H", "X-Who: cli", stdin=lines(line))
    assert got["method"] == "PATCH"
    assert got["body"] == '{"from":"line"}'
    assert got["headers"]["Content-Type"] == "application/json"
    assert [v for k, v in got["header_list"] if k == "X-Who"] == ["line"]


def test_user_and_cookie_do_not_follow_a_redirect_to_another_port(servers: ServerThread) -> None:
    """-u and -b reach the first origin and are dropped when the port changes."""
    other = f"http://127.0.0.1:{servers.ports['other']}/echo?key=other-port"
    first = f"{servers.base}/redirect-to?key=first-port&code=307&url={quote(other)}"
    run = run_cli(first, "-u", "ann:pw", "-b", "s=1")
    assert run.returncode == 0, run.stderr
    (at_first,) = servers.state.echoes["first-port"]
    assert at_first["headers"]["Authorization"].startswith("Basic ")
    assert at_first["headers"]["Cookie"] == "s=1"
    (got,) = servers.state.echoes["other-port"]
    assert "Authorization" not in got["headers"]
    assert "Cookie" not in got["headers"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-d", "x", "--json", "{}"], "not both"),
        (["-b", "cookies.txt"], "not a cookie file"),
        (["-d", "@/no/such/file"], "cannot read"),
        (["-u", ":pw"], "USER:PASS"),
    ],
)
def test_bad_request_options_are_usage_errors(args: list[str], fragment: str) -> None:
    """Conflicting or unreadable request options: exit 2 with a reason."""
    result = CliRunner().invoke(command, [*args, "http://127.0.0.1:1/"])
    assert result.exit_code == 2
    assert fragment in result.stderr
