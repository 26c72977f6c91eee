"""HTTP/2 against a real server: nginx with ``http2`` over TLS and h2c, compared with curl.

Skipped where nginx (with its HTTP/2 module) is not installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.conftest import run_cli

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

CONF = """
worker_processes 1;
daemon off;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir};
    proxy_temp_path {dir};
    fastcgi_temp_path {dir};
    uwsgi_temp_path {dir};
    scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{tls} ssl http2;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        root {dir}/html;
    }}
    server {{
        listen 127.0.0.1:{h2c} http2;
        root {dir}/html;
    }}
    server {{
        listen 127.0.0.1:{status};
        location / {{ stub_status; }}
    }}
}}
"""


@dataclass
class Nginx:
    tls: int
    h2c: int
    status: int
    ca: Path
    big: bytes

    def accepted(self) -> int:
        """Connections nginx accepted so far (stub_status), this one's own included."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.status}/", timeout=5) as answer:
            return int(answer.read().decode().split("\n")[2].split()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _has_http2(nginx: str) -> bool:
    built = subprocess.run([nginx, "-V"], capture_output=True, text=True).stderr
    return "http_v2_module" in built and "http_stub_status_module" in built


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if NGINX is None or not _has_http2(NGINX):
        pytest.skip("nginx with HTTP/2 and stub_status is not installed")
    workdir = tmp_path_factory.mktemp("nginx-h2")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(workdir / "cert.pem"))
    cert.private_key_pem.write_to_path(str(workdir / "key.pem"))
    (workdir / "html").mkdir()
    (workdir / "html" / "ok").write_text("ok\n")
    big = os.urandom(5 * 1024 * 1024)
    (workdir / "html" / "big.bin").write_bytes(big)
    ports = {"tls": _free_port(), "h2c": _free_port(), "status": _free_port()}
    user = "user root;" if os.geteuid() == 0 else ""  # workers read the files as we do
    (workdir / "nginx.conf").write_text(CONF.format(dir=workdir, user=user, **ports))
    process = subprocess.Popen(
        [NGINX, "-c", str(workdir / "nginx.conf"), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["status"]), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"nginx did not start: {(workdir / 'error.log').read_text()}")
                time.sleep(0.05)
        yield Nginx(ports["tls"], ports["h2c"], ports["status"], workdir / "ca.pem", big)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_alpn_h2_with_nginx_and_a_big_body(nginx: Nginx) -> None:
    """nginx picks h2 by ALPN; a 5 MB body arrives whole (sha256) on the same connection."""
    base = f"https://127.0.0.1:{nginx.tls}"
    run = run_cli(
        "--http2", "--cacert", str(nginx.ca), "--hash", "--max-body", "10MB",
        "-c", "1", f"{base}/ok", f"{base}/big.bin",
    )  # fmt: skip
    ok, big = sorted(run.records, key=lambda r: r["index"])
    assert (ok["status"], ok["http_version"], ok["size"]) == (200, "2", 3)
    assert big["sha256"] == hashlib.sha256(nginx.big).hexdigest()
    assert big["reused"] is True


def test_nginx_carries_200_requests_on_one_connection(nginx: Nginx) -> None:
    """200 requests at -c 50 share one h2 connection (nginx's accept count, by stub_status)."""
    before = nginx.accepted()
    urls = [f"https://127.0.0.1:{nginx.tls}/ok?i={i}" for i in range(200)]
    run = run_cli("--http2", "--cacert", str(nginx.ca), "-c", "50", *urls)
    assert all(r["ok"] and r["http_version"] == "2" for r in run.records)
    assert nginx.accepted() - before == 2  # afetch's one, and this count's own


def test_h2c_with_prior_knowledge(nginx: Nginx) -> None:
    """--http2-prior-knowledge speaks h2c to nginx's plain port."""
    run = run_cli("--http2-prior-knowledge", f"http://127.0.0.1:{nginx.h2c}/ok")
    (record,) = run.records
    assert (record["status"], record["http_version"]) == (200, "2")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_same_answers_as_curl(nginx: Nginx) -> None:
    """Status, version and size as curl --http2 sees them, found or not."""
    for path in ("/ok", "/big.bin", "/missing"):
        url = f"https://127.0.0.1:{nginx.tls}{path}"
        curl = subprocess.run(
            ["curl", "-s", "--http2", "--cacert", str(nginx.ca), "-o", "/dev/null",
             "-w", "%{http_code} %{http_version} %{size_download}", url],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.split()  # fmt: skip
        run = run_cli("--http2", "--cacert", str(nginx.ca), "--max-body", "10MB", url, status=None)
        (record,) = run.records
        assert [str(record["status"]), record["http_version"], str(record["size"])] == curl
