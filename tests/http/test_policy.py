"""The address policy: checked on the address dialled, every hop, both transports."""

from __future__ import annotations

from typing import Any

import pytest

from afetch.http.policy import AddressPolicy
from tests.conftest import run_cli, transport_free
from tests.server import ServerThread

pytestmark = pytest.mark.usefixtures("each_transport")


def _kinds(records: list[dict[str, Any]]) -> list[str]:
    return [(r["error"] or {}).get("type", "ok") for r in sorted(records, key=_index)]


def _index(record: dict[str, Any]) -> int:
    return int(record["index"])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_deny_private_refuses_every_spelling_of_loopback(
    servers: ServerThread, workers: str
) -> None:
    """A name whose DNS answer is 127.0.0.1, IPv4-mapped IPv6, 0x7f.1, 2130706433, 127.1:
    each is a policy record naming the address, never a connection."""
    port = servers.ports["app"]
    hosts = ["named.test", "[::ffff:127.0.0.1]", "0x7f.1", "2130706433", "127.1"]
    urls = [f"http://{host}:{port}/count/policy" for host in hosts]
    run = run_cli(*urls, "--deny-private", "--retries", "0", "--workers", workers, status=1)
    assert _kinds(run.records) == ["policy"] * len(hosts)
    assert all("--deny-private" in r["error"]["message"] for r in run.records)
    assert servers.state.hits["policy"] == 0
    allowed = run_cli(*urls, "--retries", "0", "--workers", workers)  # no policy: all connect
    assert _kinds(allowed.records) == ["ok"] * len(hosts)


def test_a_redirect_to_a_denied_host_is_refused_at_that_hop(servers: ServerThread) -> None:
    """The first hop is allowed, the redirect's target is not: policy, naming it."""
    port = servers.ports["app"]
    url = f"http://allowed.test:{port}/redirect-to?url=http://denied.test:{port}/ok"
    run = run_cli(url, "--deny-private", "--allow", "allowed.test", "--retries", "0", status=1)
    (record,) = run.records
    assert record["error"]["type"] == "policy"
    assert "denied.test" in record["error"]["message"]


def test_a_denied_address_among_several_is_skipped_not_dialled(servers: ServerThread) -> None:
    """One name, two addresses, one denied: the other answers (the denied one is never a
    Happy Eyeballs candidate)."""
    port = servers.ports["app"]
    run = run_cli(
        f"http://two.test:{port}/ok", "--resolve", f"two.test:{port}:127.0.0.2,127.0.0.1",
        "--deny", "127.0.0.2/32", "--retries", "0",
    )  # fmt: skip
    (record,) = run.records
    assert record["ok"], record
    assert record["remote_ip"] == "127.0.0.1"


def test_international_names_in_resolve_and_deny_match_the_url(servers: ServerThread) -> None:
    """--resolve and --deny name a host as the user writes it (bücher.test); the URL's host
    is its IDNA form (xn--bcher-kva.test): both still match it."""
    port = servers.ports["app"]
    url = f"http://BÜCHER.test:{port}/ok"
    pinned = ("--resolve", f"bücher.test:{port}:127.0.0.1", "--retries", "0")
    (record,) = run_cli(url, *pinned).records
    assert record["ok"], record
    assert record["url"] == f"http://xn--bcher-kva.test:{port}/ok"
    (denied,) = run_cli(url, *pinned, "--deny", "Bücher.test.", status=1).records
    assert denied["error"]["type"] == "policy"


def test_a_proxied_request_is_checked_on_the_proxys_address(servers: ServerThread) -> None:
    """Through a proxy it is the proxy that is dialled: its address is what the policy sees."""
    proxy = f"http://127.0.0.1:{servers.ports['proxy']}"
    run = run_cli(
        "http://93.184.216.34/", "--proxy", proxy, "--deny-private", "--retries", "0", status=1
    )
    (record,) = run.records
    assert record["error"]["type"] == "policy"
    assert "127.0.0.1" in record["error"]["message"]


@transport_free
def test_include_and_exclude_select_before_any_request() -> None:
    """URLs not selected are skipped records naming why; nothing is fetched for them."""
    run = run_cli("http://127.0.0.1:1/a", "http://127.0.0.1:1/b", "--include", "/a", status=1)
    kinds = {r["url"]: r["error"]["message"] for r in run.records}
    assert "not attempted: matched no --include pattern" in kinds["http://127.0.0.1:1/b"]
    excluded = run_cli("http://127.0.0.1:1/a", "--exclude", "/a$", status=1)
    (record,) = excluded.records
    assert record["error"] == {
        "type": "skipped",
        "message": "not attempted: excluded by --exclude '/a$'",
    }


@transport_free
def test_the_policy_reads_networks_hosts_and_wrapped_addresses() -> None:
    """Private ranges, CGNAT, metadata, mapped and NAT64 forms; --allow beats
    --deny-private, --deny beats --allow; a bad network is a usage error."""
    policy = AddressPolicy.build(deny_private=True, allow=["10.1.0.0/16"], deny=["10.1.2.3"])
    assert policy is not None
    refused = [
        "127.0.0.1", "10.9.9.9", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "::1", "fd00:ec2::254", "fe80::1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "0.0.0.0",
    ]  # fmt: skip
    for ip in refused:
        assert policy.refusal("h", ip) is not None, ip
    assert policy.refusal("h", "10.1.9.9") is None
    assert policy.refusal("h", "10.1.2.3") is not None
    assert policy.refusal("h", "93.184.216.34") is None
    assert AddressPolicy.build(deny_private=False) is None
    with pytest.raises(ValueError, match="--deny"):
        AddressPolicy.build(deny_private=False, deny=["10.0.0.0/99"])
    usage = run_cli("http://127.0.0.1:1/", "--deny", "10.0.0.0/99", status=2)
    assert "--deny" in usage.stderr
