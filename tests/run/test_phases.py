"""A timeout or a connection-level failure says where it happened (``error.phase``)."""

from __future__ import annotations

from typing import Any

import pytest

import afetch
from tests.conftest import records_of
from tests.http.test_connect import black_hole
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


async def one(url: str, **options: Any) -> dict[str, Any]:
    (record,) = records_of(await afetch.fetch_all([url], retries=0, **options))
    return record


async def test_each_phase_is_named(servers: ServerThread) -> None:
    """No answer: ttfb; an answer that stops: body; a black hole: connect; refused:
    connect; no such name: dns. The message says it too, for timeouts."""
    hang = await one(f"{servers.base}/hang", timeout=0.5)
    assert (hang["error"]["type"], hang["error"]["phase"]) == ("timeout", "ttfb")
    assert "(in ttfb)" in hang["error"]["message"]
    trickle = await one(f"{servers.base}/trickle", timeout=0.5)
    assert (trickle["error"]["type"], trickle["error"]["phase"]) == ("timeout", "body")
    port = servers.ports["app"]
    with black_hole("127.0.0.2", port):
        hole = await one(f"http://127.0.0.2:{port}/ok", timeout=0.5)
    assert (hole["error"]["type"], hole["error"]["phase"]) == ("timeout", "connect")
    refused = await one("http://127.0.0.1:1/")
    assert (refused["error"]["type"], refused["error"]["phase"]) == ("connect", "connect")
    missing = await one("http://no-such-host.invalid/")
    assert (missing["error"]["type"], missing["error"]["phase"]) == ("dns", "dns")
    ok = await one(f"{servers.base}/ok")
    assert ok["error"] is None
