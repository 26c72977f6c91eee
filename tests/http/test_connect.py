"""Connecting: pinned and served names, Happy Eyeballs, IP versions, the open-file budget, TLS.

Fetch-level: every test runs through both transports.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import afetch
from afetch.http.options import Pin
from afetch.limits import plan
from afetch.tls import build_context
from tests.conftest import lines, records_of, run_cli, transport_free
from tests.dnsserver import DnsServer
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")

FAST: dict[str, Any] = {"retries": 0, "timeout": 5.0}


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    server = DnsServer(lambda name: None if name.startswith("nx") else ["127.0.0.1"]).start()
    yield server
    server.stop()


@contextlib.contextmanager
def black_hole(host: str, port: int) -> Iterator[None]:
    """host:port swallows new connections: a listener whose accept queue is full."""
    listener = socket.socket()
    listener.bind((host, port))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((host, port))
        fillers.append(filler)
    try:
        yield
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def test_resolve_pins_a_name_like_curl(servers: ServerThread) -> None:
    """--resolve NAME:PORT:ADDR connects there without a lookup; the record says where."""
    port = servers.ports["app"]
    run = run_cli("--resolve", f"pinned.test:{port}:127.0.0.1", f"http://pinned.test:{port}/ok")
    (record,) = run.records
    assert record["ok"], record
    assert record["remote_ip"] == "127.0.0.1"
    assert record["timing"]["dns_ms"] is None


def test_dns_servers_are_asked_and_dead_names_only_once(
    servers: ServerThread, dns: DnsServer
) -> None:
    """Names go to --dns-servers; 30 URLs on an NXDOMAIN host make one query per type."""
    port = servers.ports["app"]
    urls = [f"http://live.test:{port}/ok", *(f"http://nx-gone.test:{port}/{i}" for i in range(30))]
    before = dns.queries["nx-gone.test"]
    run = run_cli("--dns-servers", dns.address, "-c", "8", *urls, status=1)
    records = run.by_index()
    assert records[0]["ok"], records[0]
    assert records[0]["timing"]["dns_ms"] is not None
    assert {records[i]["error"]["type"] for i in range(1, 31)} == {"dns"}
    assert "nx-gone.test" in records[1]["error"]["message"]
    assert dns.queries["nx-gone.test"] - before <= 2  # A and AAAA, once


async def test_happy_eyeballs_skips_a_black_holed_address(servers: ServerThread) -> None:
    """The first address swallows packets: the second answers well within the timeout."""
    port = servers.ports["app"]
    with black_hole("127.0.0.2", port):
        results = await afetch.fetch_all(
            [f"http://he.test:{port}/ok"],
            resolve=(Pin("he.test", port, ("127.0.0.2", "127.0.0.1")),),
            **FAST,
        )
    (record,) = records_of(results)
    assert record["ok"], record
    assert record["remote_ip"] == "127.0.0.1"
    assert record["elapsed_ms"] < 4000


@pytest.mark.parametrize("first", ["::1", "127.0.0.2"])
def test_every_address_the_hosts_file_lists_is_tried(
    servers: ServerThread, tmp_path: Path, first: str
) -> None:
    """A name listed twice in the hosts file (refused ::1, or a black-holed address first,
    then 127.0.0.1): both are tried with Happy Eyeballs, as curl does, well within -t."""
    port = servers.ports["app"]
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# test hosts\n{first} dual.lan\n127.0.0.1   dual.lan other.lan\n")
    with black_hole("127.0.0.2", port):
        run = run_cli(
            f"http://dual.lan:{port}/ok", "--retries", "0", "-t", "5",
            env={"CARES_HOSTS": str(hosts)},
        )  # fmt: skip
    (record,) = run.records
    assert record["ok"], record
    assert record["remote_ip"] == "127.0.0.1"
    assert record["elapsed_ms"] < 2000


@transport_free
def test_the_hosts_file_is_read_whole() -> None:
    """Every address of a name, in order, both families; comments and junk skipped."""
    from afetch.http.dns import read_hosts_file

    text = "127.0.0.1 a.test B.test # comment\n::1 a.test\nnot-an-ip x.test\n\n1.2.3.4\n"
    path = Path(tempfile.mkdtemp()) / "hosts"
    path.write_text(text)
    names = read_hosts_file(str(path))
    assert [ip for _, ip, _ in names["a.test"]] == ["127.0.0.1", "::1"]
    assert [ip for _, ip, _ in names["b.test"]] == ["127.0.0.1"]
    assert "x.test" not in names


async def test_ip_version_options(servers: ServerThread) -> None:
    """-4 keeps IPv4 addresses of a name; -6 on an IPv4-only target is a dns error."""
    port = servers.ports["app"]
    pin = (Pin("dual.test", port, ("::1", "127.0.0.1")),)
    v4 = await afetch.fetch_all([f"http://dual.test:{port}/ok"], resolve=pin, ip_version=4, **FAST)
    v6 = await afetch.fetch_all([f"{servers.base}/ok"], ip_version=6, **FAST)
    (ok,) = records_of(v4)
    (refused,) = records_of(v6)
    assert ok["ok"], ok
    assert ok["remote_ip"] == "127.0.0.1"
    assert refused["error"]["type"] == "dns"


@transport_free
def test_ipv4_and_ipv6_together_is_a_usage_error() -> None:
    """-4 with -6 is a usage error."""
    run = run_cli("-4", "-6", "http://127.0.0.1:1/", status=2)
    assert run.returncode == 2
    assert "-4" in run.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--resolve", "nohost"], "HOST:PORT:ADDR"),
        (["--resolve", "a.test:99999:127.0.0.1"], "port"),
        (["--resolve", "a.test:80:not-an-ip"], "not an IP"),
        (["--dns-servers", "resolver.example"], "not an IP"),
    ],
)
@transport_free
def test_bad_resolver_options_are_usage_errors(args: list[str], fragment: str) -> None:
    """Bad --resolve and --dns-servers values are usage errors naming the option."""
    run = run_cli(*args, "http://127.0.0.1:1/", status=2)
    assert run.returncode == 2
    assert fragment in run.stderr


async def test_records_say_who_answered_how_and_on_which_connection(
    servers: ServerThread,
) -> None:
    """remote_ip, http_version and reused, as curl's %{json} has them."""
    results = await afetch.fetch_all([f"{servers.base}/ok"] * 2, concurrency=1, **FAST)
    first, second = records_of(results)
    assert (first["remote_ip"], first["http_version"], first["reused"]) == (
        "127.0.0.1",
        "1.1",
        False,
    )
    assert (second["remote_ip"], second["reused"]) == ("127.0.0.1", True)
    (old,) = records_of(await afetch.fetch_all([servers.raw("until-close")], **FAST))
    assert old["http_version"] == "1.0"
    (failed,) = records_of(await afetch.fetch_all(["http://127.0.0.1:1/"], **FAST))
    assert "reused" not in failed
    assert "http_version" not in failed


def test_a_low_open_file_limit_lowers_concurrency_instead_of_failing(
    servers: ServerThread,
) -> None:
    """ulimit -n 160 with -c 500: one message, and every request still ok."""

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    urls = lines(*(f"{servers.base}/slow?s=0.05&i={i}" for i in range(300)))
    run = run_cli("-c", "500", "--summary", stdin=urls, preexec_fn=low_limit)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records) == 300
    assert all(record["ok"] for record in run.records)
    assert run.stderr.count("open-file limit is 160") == 1


@transport_free
def test_the_open_file_budget_plan() -> None:
    """Concurrency and idle connections fit the limit; a roomy limit changes nothing."""
    roomy = plan(100, 1, 1 << 20)
    assert (roomy.concurrency, roomy.idle, roomy.note) == (100, 400, None)
    tight = plan(2000, 1, 1024, in_use=10)
    assert tight.concurrency + tight.idle <= 1024 - 10 - 16
    assert tight.concurrency > 950  # what is open is counted, not a worst case
    assert tight.note is not None
    assert "--concurrency 2000 lowered" in tight.note
    per_worker = plan(2000, 4, 1024, in_use=10)
    assert (per_worker.concurrency, per_worker.note) == (500, None)
    small = plan(200, 1, 64, in_use=8)
    assert small.concurrency == 39  # 64 - 8 open - 16 spare - 1
    assert small.note is not None
    assert "at most 39 requests run at once" in small.note
    one = plan(200, 1, 26, in_use=8)
    assert one.note is not None
    assert "at most 1 request run at once" in one.note


def test_a_small_open_file_limit_still_runs_requests_side_by_side(
    servers: ServerThread,
) -> None:
    """ulimit -n 64, -c 200: about 40 requests at once fit (not 1), so 150 requests
    of 300 ms each take a couple of seconds, every one ok."""

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    urls = lines(*(f"{servers.base}/slow?s=0.3&i={i}" for i in range(150)))
    started = time.monotonic()
    run = run_cli("-c", "200", stdin=urls, preexec_fn=low_limit)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-2000:]
    assert all(record["ok"] for record in run.records)
    (said,) = [line for line in run.stderr.splitlines() if "open-file limit is 64" in line]
    at_once = int(said.split("at most ")[1].split()[0])
    assert at_once >= 30, said
    assert took < 150 * 0.3 / 10  # one at a time would take 45 s


async def test_a_reconnected_host_resumes_its_tls_session(servers: ServerThread) -> None:
    """Each answer closes its connection; the next handshake resumes the session (lean)."""
    assert servers.tls_dir is not None
    context = build_context(cacert=str(servers.tls_dir / "ca.pem"))
    results = await afetch.fetch_all(
        [f"{servers.https()}/tls-session"] * 3,
        concurrency=1,
        tls=context,
        capture_body=True,
        **FAST,
    )
    bodies = [record["body"] for record in records_of(results)]
    assert bodies[0] == "reused=False"
    assert "reused=True" in bodies[1:]


@transport_free
def test_tls_sessions_are_read_once_per_connection_and_only_for_returning_hosts() -> None:
    """Reading a session costs ~0.2 ms: not for a first-seen host, nor twice per connection."""
    from afetch.http.tls import TlsSessions

    class Handshake:
        session_reused = False
        reads = 0

        @property
        def session(self) -> str:
            Handshake.reads += 1
            return "session"

    sessions = TlsSessions()
    first, second = Handshake(), Handshake()
    sessions.remember("once.test", first)
    sessions.remember("once.test", first)
    assert Handshake.reads == 0  # the first connection to a host: it may never come back
    sessions.remember("once.test", second)
    sessions.remember("once.test", second)
    assert Handshake.reads == 1
