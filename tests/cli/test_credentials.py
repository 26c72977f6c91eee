"""Credentials go only where they belong: --netrc, --oauth2-bearer, never to another origin."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_netrc_credentials_go_to_their_host_and_no_further(
    servers: ServerThread, tmp_path: Path
) -> None:
    """The host named in the file gets Basic credentials; a redirect to another origin
    (another port) does not, nor does a host the file does not name."""
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine 127.0.0.1 login ann password pw\nmachine other.test login x password y\n"
    )
    netrc.chmod(0o600)
    other = f"http://127.0.0.1:{servers.ports['other']}/echo?key=netrc-other"
    first = f"{servers.base}/redirect-to?key=netrc-first&code=307&url={quote(other)}"
    unnamed = f"http://named.test:{servers.ports['app']}/echo?key=netrc-unnamed"
    run_cli(first, unnamed, "--netrc-file", str(netrc))
    (at_first,) = servers.state.echoes["netrc-first"]
    assert at_first["headers"]["Authorization"] == _basic("ann", "pw")
    (at_other,) = servers.state.echoes["netrc-other"]
    assert "Authorization" not in at_other["headers"]
    (at_unnamed,) = servers.state.echoes["netrc-unnamed"]
    assert "Authorization" not in at_unnamed["headers"]


def test_the_users_own_credentials_beat_netrc(servers: ServerThread, tmp_path: Path) -> None:
    """-u (and URL userinfo) win over the file, as in curl."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login ann password pw\n")
    run_cli(f"{servers.base}/echo?key=netrc-u", "--netrc-file", str(netrc), "-u", "bob:b")
    (got,) = servers.state.echoes["netrc-u"]
    assert got["headers"]["Authorization"] == _basic("bob", "b")


def test_a_missing_netrc_is_an_error_unless_optional(tmp_path: Path) -> None:
    """--netrc without ~/.netrc is a usage error; --netrc-optional goes on without it."""
    env = {"HOME": str(tmp_path)}
    missing = run_cli("http://127.0.0.1:1/", "--netrc", env=env, status=2)
    assert ".netrc does not exist" in missing.stderr
    run_cli("http://127.0.0.1:1/", "--netrc-optional", "--retries", "0", env=env, status=1)


def test_a_bearer_token_goes_to_the_first_origin_only(servers: ServerThread) -> None:
    """--oauth2-bearer sends 'Authorization: Bearer', dropped on a redirect to another
    origin; with -u it is a usage error; --show-config masks it."""
    other = f"http://127.0.0.1:{servers.ports['other']}/echo?key=bearer-other"
    first = f"{servers.base}/redirect-to?key=bearer-first&code=307&url={quote(other)}"
    run_cli(first, "--oauth2-bearer", "TOPSECRET")
    (at_first,) = servers.state.echoes["bearer-first"]
    assert at_first["headers"]["Authorization"] == "Bearer TOPSECRET"
    (at_other,) = servers.state.echoes["bearer-other"]
    assert "Authorization" not in at_other["headers"]
    both = run_cli(first, "--oauth2-bearer", "t", "-u", "a:b", status=2)
    assert "not both" in both.stderr
    shown = run_cli("--show-config", "--oauth2-bearer", "TOPSECRET")
    assert b"TOPSECRET" not in shown.stdout


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_answers_the_challenge_once(servers: ServerThread, algorithm: str) -> None:
    """--digest -u: the 401's challenge is answered once (RFC 7616, qop=auth), one attempt;
    a wrong password is the second 401, recorded; without --digest -u is Basic."""
    url = f"{servers.base}/digest/{algorithm}"
    run = run_cli(url, "--digest", "-u", "ann:pw", "--body")
    (record,) = run.records
    assert (record["status"], record["body"], record["attempts"]) == (200, "authenticated", 1)
    assert servers.state.hits[f"digest-{algorithm}"] == 2
    wrong = run_cli(url, "--digest", "-u", "ann:nope", "--retries", "0", status=1)
    (refused,) = wrong.records
    assert refused["status"] == 401
    assert servers.state.hits[f"digest-{algorithm}"] == 4  # challenged, answered once
    basic = run_cli(url, "-u", "ann:pw", "--retries", "0", status=1)
    assert basic.records[0]["status"] == 401


def test_digest_is_not_answered_for_another_origin(servers: ServerThread) -> None:
    """A redirect to another origin that challenges gets no Digest answer."""
    other = f"http://127.0.0.1:{servers.ports['other']}/digest/MD5"
    first = f"{servers.base}/redirect-to?code=302&url={quote(other)}"
    run = run_cli(first, "--digest", "-u", "ann:pw", "--retries", "0", status=1)
    (record,) = run.records
    assert record["status"] == 401
    assert "--digest" in run_cli("http://127.0.0.1:1/", "--digest", status=2).stderr
