"""timing: which phases a record reports, and that they add up."""

from __future__ import annotations

from typing import Any

import pytest

import afetch
from afetch.tls import build_context
from tests.conftest import records_of
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


async def timings(urls: list[str], **options: Any) -> list[dict[str, Any]]:
    results = await afetch.fetch_all(urls, retries=0, concurrency=1, **options)
    return [record["timing"] for record in records_of(results)]


async def test_a_new_https_connection_reports_connect_tls_and_ttfb(servers: ServerThread) -> None:
    """First request: TCP connect, TLS handshake and first byte, in that order, within total."""
    assert servers.tls_dir is not None
    context = build_context(cacert=str(servers.tls_dir / "ca.pem"))
    first, second = await timings([f"{servers.https()}/ok"] * 2, tls=context)
    assert first["dns_ms"] is None  # an IP literal needs no lookup
    assert first["connect_ms"] > 0
    assert first["tls_ms"] > 0
    assert first["connect_ms"] + first["tls_ms"] <= first["ttfb_ms"] <= first["total_ms"]
    # The second request reuses the connection: no connect, no handshake.
    assert second["connect_ms"] is None
    assert second["tls_ms"] is None
    assert second["ttfb_ms"] is not None


async def test_a_host_name_reports_dns_and_plain_http_has_no_tls(servers: ServerThread) -> None:
    """localhost is looked up (dns_ms); http has tls_ms null."""
    (timing,) = await timings([f"http://localhost:{servers.ports['app']}/ok"])
    assert timing["dns_ms"] is not None
    assert timing["dns_ms"] >= 0
    assert timing["tls_ms"] is None


async def test_ttfb_includes_server_think_time(servers: ServerThread) -> None:
    """A server that waits 200 ms before answering shows it in ttfb_ms."""
    (timing,) = await timings([f"{servers.base}/slow?s=0.2"])
    assert timing["ttfb_ms"] >= 190


async def test_failed_connections_still_report_total(servers: ServerThread) -> None:
    """A refused connection has timing with total_ms and null phases."""
    (timing,) = await timings(["http://127.0.0.1:1/"])
    assert timing["connect_ms"] is None
    assert timing["ttfb_ms"] is None
    assert timing["total_ms"] >= 0
