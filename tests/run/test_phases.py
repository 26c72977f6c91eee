"""A timeout or a connection-level failure says where it happened (``error.phase``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from multidict import CIMultiDict
from yarl import URL

import afetch
from afetch.config import Config
from afetch.http import HopTiming, Request, begin_hop, open_transport
from afetch.http.lean.pool import RAMP_FIRST
from tests.conftest import Transport, records_of
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


async def test_an_upload_the_server_does_not_read_times_out_in_send(servers: ServerThread) -> None:
    """8 MiB to a server that never reads: the request is still being written (send)."""
    record = await one(servers.raw("deaf"), method="POST", body=b"x" * (8 << 20), timeout=1.0)
    assert (record["error"]["type"], record["error"]["phase"]) == ("timeout", "send")
    assert record["error"]["message"].endswith("(in send)")
    small = await one(servers.raw("deaf"), method="POST", body=b"x", timeout=0.3)
    assert small["error"]["phase"] == "ttfb"  # all of it written: waiting for the answer


async def test_waiting_for_a_connection_is_the_queue_phase(
    servers: ServerThread, each_transport: Transport
) -> None:
    """A request that times out waiting for room on its origin's connections says queue:
    the lean client opens at most RAMP_FIRST connections to a new origin until it keeps
    one alive; the aiohttp client waits at its connection limit."""
    url = f"{servers.base}/hang"
    if each_transport == "lean":
        # The first ones hold the connections past the others' timeout.
        requests = [{"url": url, "timeout": 1.5}] * RAMP_FIRST + [{"url": url, "timeout": 0.5}] * 3
        records = records_of(await afetch.fetch_all(requests, retries=0))
        phases = [record["error"]["phase"] for record in records]
        assert phases == ["ttfb"] * RAMP_FIRST + ["queue"] * 3
        return
    transport = open_transport(Config(concurrency=1).transport_options())
    try:
        hops = [begin_hop(), begin_hop()]

        async def send(hop: HopTiming) -> None:
            async with transport.send(Request("GET", URL(url), CIMultiDict()), hop):
                pass

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await asyncio.gather(*(send(hop) for hop in hops))
        assert sorted(hop.phase(tls=False) for hop in hops) == ["queue", "ttfb"]
    finally:
        await transport.close()
