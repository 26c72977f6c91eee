"""Proxies: --proxy, the environment read once, NO_PROXY, credentials, CONNECT."""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from yarl import URL

from afetch.http.proxy import DIRECT, Proxies, bypasses
from tests.conftest import run_cli
from tests.server import ServerThread


def test_scheme_proxy_all_proxy_and_no_proxy() -> None:
    """http_proxy for http, all_proxy as fallback, no_proxy hosts go direct."""
    proxies = Proxies.from_environment(
        {
            "http_proxy": "http://p:3128",
            "ALL_PROXY": "proxy.local:8080",
            "no_proxy": "internal.example",
        }
    )
    assert proxies
    assert proxies.for_url(URL("http://a.example/")).proxy == URL("http://p:3128")
    assert proxies.for_url(URL("https://a.example/")).proxy == URL("http://proxy.local:8080")
    assert proxies.for_url(URL("http://internal.example/x")) == DIRECT
    assert proxies.for_url(URL("http://api.internal.example/x")) == DIRECT


def test_no_environment_means_no_proxy() -> None:
    """Without proxy variables every URL connects directly."""
    proxies = Proxies.from_environment({})
    assert not proxies
    assert proxies.for_url(URL("http://a.example/")) == DIRECT


def test_no_proxy_entries_match_like_curl() -> None:
    """'*', domain suffixes with or without a dot, and host:port entries."""
    assert bypasses("*", "any.host", 80)
    assert bypasses(".example.com", "a.example.com", 443)
    assert bypasses("example.com", "example.com", 443)
    assert not bypasses("example.com", "badexample.com", 443)
    assert bypasses("localhost:8080", "localhost", 8080)
    assert not bypasses("localhost:8080", "localhost", 9090)
    assert not bypasses("", "localhost", 80)


def test_proxy_credentials_are_split_out_of_the_url() -> None:
    """user:pass in the proxy URL becomes proxy_auth; the URL keeps no secret."""
    route = Proxies.from_option("http://ann:pw@127.0.0.1:3128").for_url(URL("http://a/"))
    assert route.proxy == URL("http://127.0.0.1:3128")
    assert route.headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"ann:pw").decode()}


def test_an_empty_proxy_option_disables_the_environment() -> None:
    """--proxy '' means direct connections whatever the environment says."""
    assert not Proxies.from_option("")


def test_noproxy_replaces_no_proxy() -> None:
    """--noproxy HOSTS replaces NO_PROXY's list (as curl's option); '*' turns proxies off."""
    environ = {"http_proxy": "http://proxy.example:3128", "no_proxy": "a.example"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environ.items():
            patch.setenv(key, value)
        both = Proxies.from_option(None, "b.example")
        assert both.for_url(URL("http://a.example/")).proxy is not None
        assert both.for_url(URL("http://b.example/")).proxy is None
        given = Proxies.from_option("http://other.example:8080", "c.example")
        assert given.for_url(URL("http://a.example/")).proxy == URL("http://other.example:8080")
        assert given.for_url(URL("http://x.c.example/")).proxy is None
        assert not Proxies.from_option(None, "*")


def proxied(servers: ServerThread, marker: str) -> list[str]:
    return [head for head in servers.proxy.heads if marker in head]


def test_proxy_option_sends_requests_through_the_proxy(servers: ServerThread) -> None:
    """--proxy URL: the request passes through the proxy and still succeeds."""
    proxy = f"http://127.0.0.1:{servers.ports['proxy']}"
    run = run_cli(f"{servers.base}/ok?via=option", "--proxy", proxy)
    assert run.returncode == 0, run.records
    (head,) = proxied(servers, "via=option")
    assert head.startswith(f"GET {servers.base}/ok?via=option HTTP/1.1")


def test_environment_proxy_is_honoured_and_no_proxy_respected(servers: ServerThread) -> None:
    """HTTP_PROXY is used by default; NO_PROXY and --proxy '' bypass it."""
    env = {"HTTP_PROXY": f"http://127.0.0.1:{servers.ports['proxy']}"}
    assert run_cli(f"{servers.base}/ok?via=env", env=env).returncode == 0
    assert len(proxied(servers, "via=env")) == 1
    run = run_cli(f"{servers.base}/ok?via=bypass", env={**env, "NO_PROXY": "127.0.0.1"})
    assert run.returncode == 0
    assert run_cli(f"{servers.base}/ok?via=off", "--proxy", "", env=env).returncode == 0
    assert proxied(servers, "via=bypass") == []
    assert proxied(servers, "via=off") == []
    run = run_cli(f"{servers.base}/ok?via=noproxy", "--noproxy", "localhost,127.0.0.1", env=env)
    assert run.returncode == 0
    assert proxied(servers, "via=noproxy") == []


def test_https_goes_through_connect_with_proxy_credentials(servers: ServerThread) -> None:
    """HTTPS tunnels with CONNECT; proxy credentials reach the proxy, not the origin."""
    assert servers.tls_dir is not None
    proxy = f"http://ann:pw@127.0.0.1:{servers.ports['proxy']}"
    url = f"{servers.https()}/echo?key=via-connect"
    run = run_cli(url, "--proxy", proxy, "--cacert", str(servers.tls_dir / "ca.pem"))
    assert run.returncode == 0, run.records
    (head,) = proxied(servers, f"CONNECT 127.0.0.1:{servers.ports['https']}")
    expected = base64.b64encode(b"ann:pw").decode()
    assert f"Proxy-Authorization: Basic {expected}" in head
    (seen,) = servers.state.echoes["via-connect"]
    assert "Proxy-Authorization" not in seen["headers"]


@pytest.fixture(scope="module")
def authenticating_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """proxy.py (a real forward proxy from PyPI) demanding Basic credentials ann:s3cret."""
    port_file = tmp_path_factory.mktemp("proxy") / "port"
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("proxy")), "--hostname", "127.0.0.1", "--port", "0",
         "--port-file", str(port_file), "--basic-auth", "ann:s3cret",
         "--num-workers", "1", "--num-acceptors", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, "proxy.py exited"
            assert time.monotonic() < deadline, "proxy.py did not start"
            time.sleep(0.05)
        yield f"127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("given", ["option", "environment"])
def test_an_authenticating_proxy_gets_its_credentials(
    servers: ServerThread, authenticating_proxy: str, each_transport: str, scheme: str, given: str
) -> None:
    """Plain http sends Proxy-Authorization in the request (aiohttp only put it in CONNECT),
    https in CONNECT; from --proxy and from *_proxy alike; a wrong password is 407."""
    assert servers.tls_dir is not None
    url = f"{servers.base}/ok" if scheme == "http" else f"{servers.https()}/ok"
    proxy = f"http://ann:s3cret@{authenticating_proxy}"
    tls = ["--cacert", str(servers.tls_dir / "ca.pem")]
    if given == "option":
        run = run_cli(url, "--retries", "0", "--proxy", proxy, *tls)
    else:
        run = run_cli(url, "--retries", "0", *tls, env={f"{scheme}_proxy": proxy})
    (record,) = run.records
    assert (record["ok"], record["status"]) == (True, 200), record
    if scheme == "http":
        wrong = run_cli(url, "--retries", "0", "--proxy", proxy.replace("s3cret", "nope"), status=1)
        (refused,) = wrong.records
        assert refused["status"] == 407


@pytest.mark.parametrize("how", ["proxied", "aiohttp"])
def test_the_first_request_does_not_pay_for_building_the_client(
    servers: ServerThread, how: str
) -> None:
    """aiohttp's import (~130 ms) and the trust store (~25 ms) are built before the first
    request starts, not inside its elapsed time and timeout."""
    args = (
        ["--proxy", f"http://127.0.0.1:{servers.ports['proxy']}"]
        if how == "proxied"
        else ["--http-client", "aiohttp"]
    )
    run = run_cli(f"{servers.base}/ok", "--retries", "0", *args, process=True)  # a fresh one
    (record,) = run.records
    assert record["ok"], record
    assert record["elapsed_ms"] < 50, record


@pytest.fixture(scope="module")
def socks_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """pproxy (PyPI) serving SOCKS5 with ann:pw and SOCKS4 on two ports (uvloop hidden
    from it: pproxy cannot start under uvloop; --auth 0: every connection authenticates,
    none is let through because its address did before)."""
    ports = [free_port(), free_port()]
    script = (
        "import sys; sys.modules['uvloop'] = None; from pproxy.server import main; "
        f"sys.argv = ['pproxy', '-l', 'socks5://127.0.0.1:{ports[0]}#ann:pw',"
        f" '-l', 'socks4://127.0.0.1:{ports[1]}', '--auth', '0']; main()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "pproxy exited"
            assert time.monotonic() < deadline, "pproxy did not start"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", ports[1]), 1):
                break
            time.sleep(0.05)
        yield ports[0], ports[1]
    finally:
        proc.terminate()
        proc.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("given", ["option", "environment"])
def test_a_socks_proxy_carries_http_and_https(
    servers: ServerThread, socks_proxy: tuple[int, int], scheme: str, given: str
) -> None:
    """socks5:// and socks5h:// with credentials, from --proxy and ALL_PROXY: http and https
    answer through it, remote_ip is the proxy's; a wrong password is a connect error."""
    assert servers.tls_dir is not None
    proxy = f"{scheme}://ann:pw@127.0.0.1:{socks_proxy[0]}"
    urls = [f"{servers.base}/ok?via={scheme}", f"{servers.https()}/ok?via={scheme}"]
    tls = ["--cacert", str(servers.tls_dir / "ca.pem")]
    if given == "option":
        run = run_cli(*urls, "--retries", "0", "--proxy", proxy, *tls)
    else:
        run = run_cli(*urls, "--retries", "0", *tls, env={"ALL_PROXY": proxy})
    assert [r["ok"] for r in run.records] == [True, True], run.records
    assert {r["remote_ip"] for r in run.records} == {"127.0.0.1"}
    wrong = run_cli(urls[0], "--retries", "0", "--proxy", proxy.replace(":pw@", ":no@"), status=1)
    (refused,) = wrong.records
    assert refused["error"]["type"] == "connect"
    assert "SOCKS proxy" in refused["error"]["message"]


def test_socks4_and_the_policy_on_the_proxys_address(
    servers: ServerThread, socks_proxy: tuple[int, int]
) -> None:
    """socks4:// works too; --deny-private refuses a SOCKS proxy on a private address."""
    run = run_cli(f"{servers.base}/ok", "--proxy", f"socks4://127.0.0.1:{socks_proxy[1]}")
    assert run.records[0]["ok"], run.records
    denied = run_cli(
        f"{servers.base}/ok", "--proxy", f"socks5://ann:pw@127.0.0.1:{socks_proxy[0]}",
        "--deny-private", "--retries", "0", status=1,
    )  # fmt: skip
    assert denied.records[0]["error"]["type"] == "policy"
