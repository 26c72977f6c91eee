"""The resolver (afetch.http.dns) against a real DNS server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from afetch.errors import DnsError
from afetch.http.dns import Resolver
from afetch.http.options import Pin
from afetch.http.timing import begin_hop
from tests.dnsserver import DnsServer


def answers(name: str) -> list[str] | None:
    if name.startswith("nx"):
        return None
    if name == "both.test":
        return ["::1", "127.0.0.1"]
    if name == "v6.test":
        return ["::1"]
    return ["127.0.0.1"]


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    server = DnsServer(answers, delay=0.1).start()
    yield server
    server.stop()


def resolver(dns: DnsServer, **options: object) -> Resolver:
    return Resolver(nameservers=(dns.address,), **options)  # type: ignore[arg-type]


async def test_concurrent_lookups_of_one_name_are_one_query(dns: DnsServer) -> None:
    """Fifty requests for a new name at once: one A and one AAAA query reach the server."""
    r = resolver(dns)
    try:
        results = await asyncio.gather(*(r.resolve("same.test", 80) for _ in range(50)))
    finally:
        await r.close()
    assert all(result[0][4] == ("127.0.0.1", 80) for result in results)
    assert dns.queries["same.test"] == 2


async def test_answers_are_cached_and_nxdomain_too(dns: DnsServer) -> None:
    """A second lookup, good or NXDOMAIN, asks nothing: 500 URLs on a dead host ask once."""
    r = resolver(dns)
    try:
        await r.resolve("cached.test", 443)
        await r.resolve("cached.test", 80)
        for _ in range(3):
            with pytest.raises(DnsError, match=r"nx-dead\.test:443: .*not found"):
                await r.resolve("nx-dead.test", 443)
    finally:
        await r.close()
    assert dns.queries["cached.test"] == 2
    assert dns.queries["nx-dead.test"] == 2


async def test_lookups_are_not_queued_behind_each_other(dns: DnsServer) -> None:
    """200 names at 100 ms each finish together: no thread pool caps them.

    Serially they take 20 s, through libuv's 4-thread pool 5 s; the bound leaves
    room for a loaded 2-core machine (coverage tracing, the server's own thread).
    """
    r = resolver(dns)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(r.resolve(f"wide{i}.test", 80) for i in range(200)))
    finally:
        await r.close()
    assert time.perf_counter() - started < 4.0


async def test_the_c_ares_channel_is_renewed_and_lookups_go_on(
    dns: DnsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every few queries a fresh channel (c-ares's own cache is unbounded); none is lost."""
    from afetch.http import dns as dns_module

    monkeypatch.setattr(dns_module._CaresBackend, "ROTATE_AFTER", 3)
    r = resolver(dns)
    try:
        results = await asyncio.gather(*(r.resolve(f"rotate{i}.test", 80) for i in range(20)))
        results += [await r.resolve(f"rotate-late{i}.test", 80) for i in range(5)]
    finally:
        await r.close()
    assert all(result[0][4] == ("127.0.0.1", 80) for result in results)


async def test_the_cache_is_bounded(dns: DnsServer) -> None:
    """Least recently used names leave first: memory does not grow with the host count."""
    r = resolver(dns, max_entries=3)
    try:
        for i in range(6):
            await r.resolve(f"bounded{i}.test", 80)
        await r.resolve("bounded5.test", 80)
        await r.resolve("bounded0.test", 80)
    finally:
        await r.close()
    assert list(r._cache) == ["bounded4.test", "bounded5.test", "bounded0.test"]


async def test_dns_ms_is_the_lookup_of_whoever_did_it(dns: DnsServer) -> None:
    """The request that started a lookup times it; one that waited for it reports none."""
    r = resolver(dns)
    first, second, later = begin_hop(), begin_hop(), begin_hop()
    try:
        await asyncio.gather(
            r.resolve("timed.test", 80, first), r.resolve("timed.test", 80, second)
        )
        await r.resolve("timed.test", 80, later)
    finally:
        await r.close()
    assert first.dns_start is not None
    assert first.dns_end is not None
    assert 0.09 <= first.dns_end - first.dns_start < 1.0
    assert (second.dns_start, later.dns_start) == (None, None)


async def test_pins_and_literals_need_no_query(dns: DnsServer) -> None:
    """--resolve pins a name (per port, or any port with *); IP literals resolve to themselves."""
    pins = (Pin("pinned.test", 8080, ("127.0.0.3", "::1")), Pin("star.test", None, ("127.0.0.4",)))
    r = resolver(dns, pins=pins)
    try:
        pinned = await r.resolve("pinned.test", 8080)
        star = await r.resolve("star.test", 1234)
        literal = await r.resolve("::1", 443)
        unpinned_port = await r.resolve("pinned.test", 9090)
    finally:
        await r.close()
    assert [info[4][0] for info in pinned] == ["127.0.0.3", "::1"]
    assert star[0][4] == ("127.0.0.4", 1234)
    assert literal[0][0] == socket.AF_INET6
    assert unpinned_port[0][4] == ("127.0.0.1", 9090)  # asked the server
    assert dns.queries["star.test"] == 0


async def test_an_ip_version_keeps_only_its_addresses(dns: DnsServer) -> None:
    """-4 and -6: addresses of the other family are dropped; none left is a dns error."""
    v4 = resolver(dns, family=socket.AF_INET)
    v6 = resolver(dns, family=socket.AF_INET6)
    try:
        assert [i[4][0] for i in await v4.resolve("both.test", 80)] == ["127.0.0.1"]
        assert [i[4][0] for i in await v6.resolve("both.test", 80)] == ["::1"]
        with pytest.raises(DnsError, match=r"^v6\.test:80: "):
            await v4.resolve("v6.test", 80)
        with pytest.raises(DnsError, match="no address"):
            await v6.resolve("127.0.0.1", 80)
    finally:
        await v4.close()
        await v6.close()


async def test_a_request_that_gives_up_does_not_cancel_the_lookup(dns: DnsServer) -> None:
    """A request timing out while waiting leaves the shared lookup running for the others."""
    r = resolver(dns)
    try:
        impatient = asyncio.ensure_future(r.resolve("shared.test", 80))
        patient = asyncio.ensure_future(r.resolve("shared.test", 80))
        await asyncio.sleep(0.02)
        impatient.cancel()
        assert (await patient)[0][4] == ("127.0.0.1", 80)
    finally:
        await r.close()


async def test_a_silent_name_server_is_a_dns_error_not_a_hang() -> None:
    """No answer at all (a dead resolver): the lookup fails and is not cached."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    r = Resolver(nameservers=(address,), query_options={"timeout": 0.2, "tries": 1})
    try:
        async with asyncio.timeout(30):
            with pytest.raises(DnsError):
                await r.resolve("silent.test", 80)
    finally:
        await r.close()
        silent.close()


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("www.example.com", None),
        ("my-host_1.test", None),
        ("cafe.bad", None),  # hex letters only: the slow path still says name
        ("127.0.0.1", "127.0.0.1"),
        ("0X7F.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),  # a zone's letters do not make it a name
    ],
)
def test_literals_are_told_from_names(host: str, address: str | None) -> None:
    """Names skip the address parser (its ValueError cost µs a connection); every
    literal form still needs no lookup."""
    from afetch.http.dns import _literal

    found = _literal(host)
    assert (found[1] if found else None) == address
