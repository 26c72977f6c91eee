"""Bot walls are `blocked`, not outages; never a guess (a plain 403 stays `http`)."""

from __future__ import annotations

import pytest

from afetch.bot_walls import bot_wall
from tests.conftest import run_cli, transport_free
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")

VENDORS = {
    "cf-header": "cloudflare",
    "cf-body": "cloudflare",
    "datadome": "datadome",
    "perimeterx": "perimeterx",
    "imperva": "imperva",
    "aws": "aws-waf",
    "sucuri": "sucuri",
    "akamai": "akamai",
    "linkedin": "linkedin",
}


def test_each_vendors_challenge_is_blocked_with_its_name(servers: ServerThread) -> None:
    """Each marker (header or first KiB of body) gives `blocked` and `blocked_by`; the
    status is kept and the message says what was seen."""
    urls = [f"{servers.base}/wall/{kind}" for kind in VENDORS]
    run = run_cli(*urls, "--retries", "0", "--summary", status=1)
    for record in run.records:
        kind = record["url"].rsplit("/", 1)[1]
        assert record["error"]["type"] == "blocked", record
        assert record["blocked_by"] == VENDORS[kind]
        assert record["status"] in (403, 503, 999)
        assert "bot wall" in record["error"]["message"]
    assert "blocked" in run.stderr


def test_a_plain_403_is_not_a_wall_and_an_expected_one_is_ok(servers: ServerThread) -> None:
    """No marker, no `blocked`; a wall's status that the check expects is simply ok."""
    plain = run_cli(f"{servers.base}/wall/plain", "--retries", "0", status=1)
    (record,) = plain.records
    assert record["error"]["type"] == "http"
    assert "blocked_by" not in record
    expected = run_cli(f"{servers.base}/wall/datadome", "--expect-status", "403")
    assert expected.records[0]["ok"] is True


@transport_free
def test_only_wall_statuses_are_looked_at() -> None:
    """A marker on a 200 or a 405 is not a wall; 999 alone is LinkedIn's."""
    headers = [("x-amzn-waf-action", "captcha")]
    assert bot_wall(200, headers, b"") is None
    assert bot_wall(405, headers, b"") is None
    assert bot_wall(403, headers, b"") == ("aws-waf", "x-amzn-waf-action")
    assert bot_wall(999, [], b"") is not None
    late = b"x" * 2000 + b"px-captcha"
    assert bot_wall(403, [], late) is None  # only the first KiB is looked at
