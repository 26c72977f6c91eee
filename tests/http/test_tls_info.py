"""--tls-info and --expect-cert-days: the handshake's facts, certificates that expire."""

from __future__ import annotations

import orjson
import pytest

from tests.conftest import check_record, lines, run_cli
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def _cacert(servers: ServerThread) -> list[str]:
    assert servers.tls_dir is not None
    return ["--cacert", str(servers.tls_dir / "ca.pem")]


def test_tls_info_reports_the_handshake(servers: ServerThread) -> None:
    """--tls-info adds the handshake's version, cipher and certificate facts."""
    run = run_cli(
        f"{servers.https()}/ok", f"{servers.https()}/ok", f"{servers.base}/ok",
        "--tls-info", "-c", "1", *_cacert(servers),
    )  # fmt: skip
    first, second, plain = sorted(run.records, key=lambda r: r["index"])
    for record in (first, second):
        check_record(record)
        tls = record["tls"]
        assert tls["version"].startswith("TLSv1.")
        assert tls["cipher"]
        assert tls["issuer"].startswith("O=trustme")
        assert tls["san"] == ["localhost", "127.0.0.1"]
        assert tls["days_left"] > 365
        assert tls["not_after"].endswith("Z")
    assert second["reused"] is True
    assert second["tls"] == first["tls"]  # a reused connection reports its handshake
    assert "tls" not in plain


@pytest.mark.parametrize(("days", "ok"), [("30", False), ("12", True)])
def test_expect_cert_days(servers: ServerThread, days: str, ok: bool) -> None:
    """A certificate valid for 12 more days fails a 30-day expectation, passes a 12-day one."""
    run = run_cli(
        f"{servers.https('https-expiring')}/ok",
        "--expect-cert-days",
        days,
        *_cacert(servers),
        status=None,
    )
    (record,) = run.records
    assert record["ok"] is ok
    assert record["tls"]["days_left"] == 12
    if not ok:
        assert record["failed"] == ["certificate expires in 12 days (< 30)"]
        assert run.returncode == 1


def test_cert_days_per_line_and_with_k(servers: ServerThread) -> None:
    """-k: the certificate is not verified, yet its dates are still read."""
    line = {"url": f"{servers.https('https-expiring')}/ok", "expect": {"cert_days": 20}}
    long_lived = {"url": f"{servers.https()}/ok", "expect": {"cert_days": 20}}
    run = run_cli(
        "-k", stdin=lines(*(orjson.dumps(x).decode() for x in (line, long_lived))), status=1
    )
    by_index = {r["index"]: r for r in run.records}
    assert by_index[0]["failed"] == ["certificate expires in 12 days (< 20)"]
    assert by_index[1]["ok"] is True
    assert by_index[1]["tls"]["subject"].startswith("O=trustme")
    assert by_index[1]["tls"]["san"] == ["localhost", "127.0.0.1"]


def test_cert_days_does_not_apply_to_plain_http(servers: ServerThread) -> None:
    """--expect-cert-days does not fail plain http responses."""
    run = run_cli(f"{servers.base}/ok", "--expect-cert-days", "30")
    (record,) = run.records
    assert record["ok"] is True
    assert "tls" not in record
