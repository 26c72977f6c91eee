"""A cookie jar when asked for (-b FILE, --cookie-jar FILE): cookies by site, never across."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import lines, run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def test_a_cookie_a_response_sets_goes_to_later_requests_of_its_site(
    servers: ServerThread, tmp_path: Path
) -> None:
    """--cookie-jar: a Set-Cookie reaches the next request (and a redirect's next hop) of
    the same site, not another site's; the jar is written at the end, Netscape format."""
    jar = tmp_path / "jar.txt"
    port = servers.ports["app"]
    then = quote(f"{servers.base}/echo?key=jar-hop")
    urls = [
        f"{servers.base}/cookie/set",
        f"{servers.base}/echo?key=jar-next",
        f"http://named.test:{port}/echo?key=jar-other-site",
        f"{servers.base}/cookie/set?then={then}",
    ]
    run_cli("--cookie-jar", str(jar), "-c", "1", "--ordered", stdin=lines(*urls))
    (nxt,) = servers.state.echoes["jar-next"]
    assert nxt["headers"]["Cookie"] == "sid=abc"
    (other,) = servers.state.echoes["jar-other-site"]
    assert "Cookie" not in other["headers"]
    (hop,) = servers.state.echoes["jar-hop"]
    assert hop["headers"]["Cookie"] == "sid=abc"
    text = jar.read_text()
    assert "Netscape HTTP Cookie File" in text
    assert "\tsid\tabc" in text


def test_a_cookie_file_is_read_with_b(servers: ServerThread, tmp_path: Path) -> None:
    """-b FILE reads a Netscape cookie file: its cookies go to their own site only."""
    jar = tmp_path / "cookies.txt"
    jar.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\ttheme\tdark\n")
    port = servers.ports["app"]
    run_cli(
        f"{servers.base}/echo?key=file-own", f"http://named.test:{port}/echo?key=file-other",
        "-b", str(jar),
    )  # fmt: skip
    (own,) = servers.state.echoes["file-own"]
    assert own["headers"]["Cookie"] == "theme=dark"
    (other,) = servers.state.echoes["file-other"]
    assert "Cookie" not in other["headers"]
    bad = tmp_path / "not-cookies"
    bad.write_text("hello\n")
    refused = run_cli(f"{servers.base}/ok", "-b", str(bad), status=2)
    assert "not a cookie file" in refused.stderr


def test_without_a_jar_responses_do_not_set_cookies(servers: ServerThread) -> None:
    """The default: requests are independent, a Set-Cookie changes nothing."""
    urls = [f"{servers.base}/cookie/set", f"{servers.base}/echo?key=no-jar"]
    run_cli("-c", "1", "--ordered", stdin=lines(*urls))
    (got,) = servers.state.echoes["no-jar"]
    assert "Cookie" not in got["headers"]
