"""TLS: verified by default, --cacert, -k, client certificates; failures are 'tls'."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from afetch.cli import command
from tests.conftest import run_cli, transport_free
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def kind(run_records: list[dict[str, object]]) -> object:
    (record,) = run_records
    error = record["error"]
    return error["type"] if isinstance(error, dict) else "ok"


def test_an_unknown_ca_is_refused_by_default(servers: ServerThread) -> None:
    """Verification is on: a private CA's certificate is a 'tls' failure."""
    run = run_cli(f"{servers.https()}/ok", status=1)
    assert run.returncode == 1
    assert kind(run.records) == "tls"
    assert "certificate" in run.records[0]["error"]["message"].lower()


def test_cacert_trusts_the_private_ca(servers: ServerThread) -> None:
    """--cacert FILE makes the same server trusted."""
    assert servers.tls_dir is not None
    run = run_cli(f"{servers.https()}/ok", "--cacert", str(servers.tls_dir / "ca.pem"))
    assert run.returncode == 0, run.records
    assert kind(run.records) == "ok"


def test_cacert_replaces_rather_than_adds(servers: ServerThread) -> None:
    """Another CA given with --cacert does not vouch for this server."""
    assert servers.tls_dir is not None
    run = run_cli(
        f"{servers.https()}/ok", "--cacert", str(servers.tls_dir / "other-ca.pem"), status=1
    )
    assert kind(run.records) == "tls"


def test_insecure_skips_verification(servers: ServerThread) -> None:
    """-k fetches from a server whose certificate is not trusted."""
    assert kind(run_cli(f"{servers.https()}/ok", "-k").records) == "ok"


def test_a_hostname_the_certificate_does_not_name_is_tls(servers: ServerThread) -> None:
    """A trusted certificate issued for wrong.example does not do for 127.0.0.1."""
    assert servers.tls_dir is not None
    url = f"{servers.https('https-wrong-name')}/ok"
    run = run_cli(url, "--cacert", str(servers.tls_dir / "ca.pem"), "--retries", "0", status=1)
    assert kind(run.records) == "tls"


def test_an_expired_certificate_is_tls_as_curl_says_it(servers: ServerThread) -> None:
    """A trusted CA's certificate that expired is a 'tls' failure with curl's reason; -k
    fetches anyway and --expect-cert-days says how long ago it expired."""
    assert servers.tls_dir is not None
    url = f"{servers.https('https-expired')}/ok"
    run = run_cli(url, "--cacert", str(servers.tls_dir / "ca.pem"), "--retries", "0", status=1)
    (record,) = run.records
    assert record["error"]["type"] == "tls"
    assert "certificate verify failed: certificate has expired" in record["error"]["message"]
    (insecure,) = run_cli(url, "-k", "--expect-cert-days", "1", status=1).records
    assert insecure["status"] == 200
    assert insecure["failed"][0].startswith("certificate expired ")
    assert insecure["failed"][0].endswith(" days ago")


def test_client_certificate_is_presented_when_given(servers: ServerThread) -> None:
    """A server demanding a client certificate: refused without --cert, ok with it."""
    assert servers.tls_dir is not None
    ca = str(servers.tls_dir / "ca.pem")
    url = f"{servers.https('https-mtls')}/ok"
    without = run_cli(url, "--cacert", ca, "--retries", "0", status=1)
    assert kind(without.records) in {"tls", "protocol"}
    with_cert = run_cli(url, "--cacert", ca, "--cert", str(servers.tls_dir / "client.pem"))
    assert kind(with_cert.records) == "ok"


@transport_free
def test_an_unusable_certificate_file_is_a_usage_error(servers: ServerThread) -> None:
    """--cert pointing at something that is not a certificate: exit 2 before any request."""
    assert servers.tls_dir is not None
    result = CliRunner().invoke(
        command, ["--cert", str(servers.tls_dir / "ca.pem"), f"{servers.https()}/ok"]
    )
    assert result.exit_code == 2
