"""Pacing: rate spacing, per-host caps that do not stall other hosts, host pauses."""

from __future__ import annotations

import itertools
import time

from yarl import URL

import afetch
from afetch.config import Config
from afetch.inputs import RequestParser
from afetch.models import FetchSpec
from afetch.pacing import HostPauses, HostSlots, RateLimiter
from tests.conftest import Transport, run_cli
from tests.server import ServerThread


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_spaces_starts_evenly_without_bursts() -> None:
    """10/s: starts at 0, .1, .2 ...; an idle spell earns no burst afterwards."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock)
    assert [round(limiter.reserve(), 3) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    clock.now += 60  # idle for a minute
    assert [round(limiter.reserve(), 3) for _ in range(3)] == [0.0, 0.1, 0.2]


def test_host_pauses_follow_retry_after_up_to_the_maximum() -> None:
    """A 429/503 with Retry-After pauses that host only; too long a demand is ignored."""
    clock = FakeClock()
    pauses = HostPauses(max_wait=30, clock=clock)
    a, b = ("a.example", 443), ("b.example", 443)
    pauses.observe(a, 429, "5")
    pauses.observe(b, 503, "60")  # beyond --retry-max-wait
    pauses.observe(b, 500, "5")  # not a pausing status
    assert pauses.remaining(a) == 5
    assert pauses.remaining(b) == 0
    clock.now += 5
    assert pauses.remaining(a) == 0


def spec(index: int, url: str) -> FetchSpec:
    return FetchSpec(index, url, URL(url))


def test_host_slots_park_and_hand_over_in_order() -> None:
    """Per-host cap 1: the second request to a host waits; another host goes ahead."""
    slots = HostSlots(1)
    a1, a2, b1 = spec(0, "http://a/1"), spec(1, "http://a/2"), spec(2, "http://b/1")
    assert slots.admit(a1) is True
    assert slots.admit(a2) is False
    assert slots.admit(b1) is True
    assert slots.parked() == [a2]
    assert slots.release(a1) == [a2]  # a1's slot goes straight to a2
    assert slots.release(a2) == []
    assert slots.release(b1) == []
    assert slots._busy == {}  # nothing is kept for idle hosts


async def test_per_host_cap_holds_while_other_hosts_proceed(servers: ServerThread) -> None:
    """--per-host 2: a slow host never has more than 2 in flight and does not stall another."""
    slow = [f"{servers.base}/count/host-a?s=0.3"] * 12
    fast = [f"http://127.0.0.1:{servers.ports['other']}/count/host-b?s=0.01"] * 4
    config = Config(concurrency=10, per_host=2, retries=0)
    parser = RequestParser(config)
    order = [
        result.index
        async for result in afetch.stream([_spec(parser, u) for u in slow + fast], config)
    ]
    assert servers.state.max_inflight["host-a"] == 2
    # All of host b's requests (indices 12-15) finish before host a's first two pairs do.
    assert set(order[:4]) == {12, 13, 14, 15}


def test_rate_spaces_arrivals_at_the_server(servers: ServerThread) -> None:
    """--rate 20/s: the server sees starts at least ~50 ms apart."""
    urls = [f"{servers.base}/count/rated?s=0"] * 8
    run = run_cli(*urls, "--rate", "20/s", "-c", "8")
    assert run.returncode == 0
    arrivals = sorted(servers.state.arrivals["rated"])
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 8
    assert min(gaps) > 0.04


async def test_a_429_with_retry_after_pauses_only_that_host(
    servers: ServerThread, each_transport: Transport
) -> None:
    """After a 429 asking for 1 s, the next request to that host waits; its retry succeeds."""
    key = f"{each_transport}"
    urls = [
        f"{servers.base}/flaky/pause-{key}?fail=1&status=429&after=1",
        f"{servers.base}/slow?s=0.2",
        f"{servers.base}/count/after-pause-{key}?s=0",
        f"http://127.0.0.1:{servers.ports['other']}/count/unpaused-{key}?s=0",
    ]
    started = time.monotonic()
    results = await afetch.fetch_all(urls, concurrency=2, retries=1)
    assert [r.ok for r in results] == [True, True, True, True]
    assert results[0].attempts == 2
    (paused_arrival,) = servers.state.arrivals[f"after-pause-{key}"]
    (other_arrival,) = servers.state.arrivals[f"unpaused-{key}"]
    assert paused_arrival - started >= 0.9
    assert other_arrival - started < 0.9


def _spec(parser: RequestParser, url: str) -> FetchSpec:
    item = parser.parse_argument(url)
    assert isinstance(item, FetchSpec)
    return item


def test_host_intervals_space_each_hosts_starts_on_a_fake_clock() -> None:
    """Each start takes its host's next slot: one host waits, another does not."""
    from afetch.pacing import HostIntervals

    now = [100.0]
    spacing = HostIntervals(0.5, clock=lambda: now[0])
    a, b = ("a.test", 80), ("b.test", 80)
    assert [spacing.reserve(a) for _ in range(3)] == [0.0, 0.5, 1.0]
    assert spacing.reserve(b) == 0.0
    now[0] += 10.0  # an idle spell: no burst saved up
    assert spacing.reserve(a) == 0.0
    assert spacing.reserve(a) == 0.5


def test_host_interval_spaces_starts_to_one_host_only(servers: ServerThread) -> None:
    """--host-interval 200ms at -c 4: one host's requests arrive 200 ms apart; another
    host's request does not wait behind them."""
    other = f"http://127.0.0.1:{servers.ports['other']}/count/spaced-other"
    urls = [f"{servers.base}/count/spaced?i={i}" for i in range(4)]
    run_cli(*urls, other, "-c", "5", "--host-interval", "200ms")
    arrivals = sorted(servers.state.arrivals["spaced"])
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(arrivals) == 4
    assert min(gaps) >= 0.15, gaps
    assert servers.state.arrivals["spaced-other"][0] < arrivals[1]
